"""`python -m benchmark predict`: how many dimensions will my model need, before paying for the sweep?

For a model and dataset of `run` (the same overrides), nothing is trained: the network is linearized at
its initialization w0 (seed 0, the initialization every method of `run` starts from), where a squared
loss on one-hot targets is exactly a quadratic with Hessian the Gauss–Newton matrix H = JᵀJ/N
(subspaces/theory/linearized.py). Its threshold for a Haar-random affine subspace through w0 is
predicted as d(ε) = r − δ(C_r), the statistical dimension of the sub-level set's cone (cones.py), r = rank J.

The quadratic comes by one of two routes, said in every row:

- exact: J stored (N·C x D floats), H's eigendecomposition; where the model is small (D <= exact_max_D).
  The linearized network's own threshold is then also *measured*, exactly, for D <= measure_max_D:
  the best loss of `draws` Haar-random subspaces for every d by nested least squares (quadratic.py).
- slq: matrix-free (subspaces/theory/slq.py): the density of H from Lanczos on Gaussian probes and the
  loss per eigenvalue from Lanczos on the initial residual, a few hundred Jacobian products; the route
  for every larger model, in seconds. Measured against the exact route: within 1.2% of D.

ε is a loss level, given as a fraction of L(w0) (as the theory study), and separately ε90: the training
loss at which the linearized network, trained by gradient flow from w0, first reaches 90% of the best
validation accuracy its flow reaches — the benchmark's d*90 rule with the linearized network as its own
reference, so that d(ε) and d*90 are never confused. The theory covers random subspaces only: it does not
predict pruning or lottery subspaces. What it is compared with, and how far off it is for real networks
(cross-entropy, Adam, far from w0), is in the README ("Predicting d*90 before training").
"""
from __future__ import annotations

import csv
import functools
import math
import statistics
import time
from dataclasses import dataclass, field

import torch
from scipy.stats import spearmanr

from benchmark.config.build import build_config
from benchmark.config.compose import compose
from benchmark.core.errors import UserError
from benchmark.core.seeds import derive_seed
from benchmark.runner.context import setup
from benchmark.training.loop import Group, train_population
from benchmark.training.prep import data_seed, init_weights
from leaderboards.compare import largest_tested_d
from subspaces import IdentityProjection, Subspace
from subspaces.theory import linearized as L
from subspaces.theory import slq
from subspaces.theory.cones import project, sizes, sublevel_cone
from subspaces.theory.quadratic import crossing, nested_min_loss, success_probability

ROUTES = ("auto", "exact", "slq")
TARGET = 0.9  # fraction of the best accuracy: the benchmark's d*90
REAL_METHODS = ("random_affine", "burn_in_affine")  # the subspaces the theory is about


@dataclass(frozen=True)
class PredictSettings:
    eps: tuple[float, ...] = (0.3, 0.5, 0.7)  # fractions of L(w0)
    route: str = "auto"  # auto: exact up to exact_max_D, slq above
    drift: bool = False  # also train the real network from w0 (run's full-space recipe) and measure how far it left
    exact_max_D: int = 4000
    measure_max_D: int = 3000  # measure the linearized threshold exactly (draws x D² floats per draw)
    draws: int = 20
    probes: int = 8
    steps: int = 150
    samples: int = 300
    seed: int = 0

    def validate(self) -> None:
        if self.route not in ROUTES:
            raise UserError(f"--route {self.route!r}; accepted: {', '.join(ROUTES)}")
        if not self.eps or not all(0 < e < 1 for e in self.eps):
            raise UserError(f"--eps {list(self.eps)}: fractions of L(w0) strictly between 0 and 1")
        for name, low in (("draws", 10), ("samples", 50), ("probes", 1), ("steps", 10)):
            if getattr(self, name) < low:
                raise UserError(f"--{name.replace('_', '-')} {getattr(self, name)}: need at least {low}")

    def route_for(self, D: int) -> str:
        return self.route if self.route != "auto" else ("exact" if D <= self.exact_max_D else "slq")


@dataclass(frozen=True)
class Threshold:
    """One ε of one model: `predicted` = r − δ(C_r); `linearized` the measured crossing of P_s = 1/2 (NaN where
    not measured); both math.inf when ε is below the floor (no subspace reaches it)."""

    kind: str  # "fraction" (ε = fraction x L(w0)) or "target90" (ε90)
    fraction: float  # ε / L(w0)
    eps: float
    predicted: float
    predicted_se: float
    linearized: float


@dataclass(frozen=True)
class Drift:
    """How far the real network's training leaves the linear regime it was predicted in: one full-space run
    from w0 with `run`'s recipe (cross-entropy, its optimizer and centre lr, its epochs), the same loop."""

    distance: float  # ‖w_T − w0‖ / ‖w0‖
    ntk_change: float  # ‖K_T − K_0‖_F / ‖K_0‖_F, K = J Jᵀ on `examples` training examples
    examples: int
    steps: int
    test_accuracy: float


@dataclass
class Prediction:
    """One model: the quadratic it came from and its thresholds."""

    model: str
    D: int
    N: int
    C: int
    route: str
    rank: int
    initial_loss: float
    floor: float
    lambda_max: float
    trace: float  # tr H (exact route: Σλ; slq: its quadrature estimate)
    eps90: float
    accuracy90: float
    best_accuracy: float
    seconds: float
    thresholds: list[Threshold] = field(default_factory=list)
    real: dict[str, float] = field(default_factory=dict)  # method -> its measured d*90, where given
    real_above: dict[str, float] = field(default_factory=dict)  # method -> d*90 not reached up to this d
    drift: Drift | None = None

    @property
    def d90(self) -> Threshold:
        return next(t for t in self.thresholds if t.kind == "target90")


def quadratic(flat, w0, data, route: str, s: PredictSettings):
    """(Linearized for the cone, Flow for ε90, J_val B: the validation outputs per flow coordinate, tr H)."""
    x, Y = data.x_train, L.one_hot(data.y_train, data.num_classes)
    if route == "exact":
        J, f0 = L.jacobian(flat, w0, x), L.outputs(flat, w0, x)
        lin = L.linearize(J, Y, f0)
        del J
        flow = lin.flow()
        per = L.jacobian(flat, w0, data.x_val) @ flow.basis
        return lin, flow, per, float(lin.quadratic.eigenvalues.sum())
    with L._float64(flat):  # slq.estimate's stages, its products kept for the Krylov flow
        train = slq.products(flat, w0, x)
        f0 = flat(w0.detach().to(torch.float64), x.to(torch.float64)).detach()
        spectrum = slq.spectrum(train, Y, f0, s.probes, s.steps, derive_seed(s.seed, "predict", "probes"))
        lin = slq.synthesize(spectrum)
        flow = slq.krylov_flow(train, Y, f0, lin.floor, s.steps)
        val = slq.products(flat, w0, data.x_val)
        per = torch.stack([val.jvp(b).reshape(-1) for b in flow.basis.T], dim=1)
    return lin, flow, per, float((spectrum.density[0] * spectrum.density[1]).sum())


def predicted_d(lin: L.Linearized, eps: float, samples: int, seed: int) -> tuple[float, float]:
    """(r − δ(C_r) at ε, its Monte Carlo standard error); (inf, 0) when ε is at or below the floor."""
    if eps <= lin.floor:
        return math.inf, 0.0
    size = sizes(functools.partial(project, sublevel_cone(lin.curved(), eps - lin.floor)), lin.rank, samples, seed)
    return lin.rank - size.statistical_dimension, size.statistical_dimension_se


def measured_d(lin: L.Linearized, eps: list[float], draws: int, seed: int) -> list[float]:
    """The linearized network's d where P_s(d, ε) reaches 1/2, exactly: the best loss of `draws` Haar-random
    subspaces for every d (nested least squares in D dims, the flat ones included), 4 draws at a time."""
    gen = torch.Generator().manual_seed(seed)
    curves = torch.cat([
        nested_min_loss(lin.quadratic, torch.randn(min(4, draws - i), lin.D, lin.D, generator=gen, dtype=torch.float64))
        for i in range(0, draws, 4)]) + lin.floor
    return [crossing(p, 0.5) for p in success_probability(curves, torch.tensor(eps, dtype=torch.float64))]


def drift(flat, w0, data, cfg, examples: int = 100) -> Drift:
    """Train the real network from w0 in full space (the one loop, data order of seed 0) and compare its
    end w_T with w0: distance and the change of the empirical NTK on the first `examples` training examples."""
    run = train_population(flat, [Group(Subspace(w0[None].clone(), IdentityProjection(1, flat.D)), cfg.train.lr,
                                        (data_seed(0),))], data, cfg.train)
    wT = run.weights[0]
    x = data.x_train[:examples]
    K0, KT = (J @ J.T for J in (L.jacobian(flat, w, x) for w in (w0, wT)))
    return Drift(float((wT - w0).norm() / w0.norm()), float((KT - K0).norm() / K0.norm()), len(x), run.steps,
                 float(run.metrics[0]["test_acc"]))


def predict(label: str | None, overrides: list[str], s: PredictSettings) -> Prediction:
    """One model: compose its `run` config, linearize at w0, flow to ε90, predict (and measure) d(ε).
    label: the model's name in the report (None: the config's model name)."""
    start = time.perf_counter()
    cfg = build_config(compose([*overrides, "device=cpu"]))  # float64 linear algebra: the CPU's
    label = label or str(cfg.model["name"])
    _, data, make, flat = setup(cfg)
    w0 = init_weights(make, 0)
    route = s.route_for(flat.D)
    lin, flow, per, trace = quadratic(flat, w0, data, route, s)
    losses, accs = L.flow_accuracy(flow, per, L.outputs(flat, w0, data.x_val), data.y_val)
    eps90, acc90, best = L.loss_at_accuracy(losses, accs, TARGET)
    L0 = lin.initial_loss
    levels = [("fraction", f, f * L0) for f in s.eps] + [("target90", eps90 / L0, eps90)]
    measure = route == "exact" and flat.D <= s.measure_max_D
    linearized = (measured_d(lin, [e for *_, e in levels], s.draws, derive_seed(s.seed, "predict", "draws", label))
                  if measure else [math.nan] * len(levels))
    out = Prediction(label, flat.D, lin.N, data.num_classes, route, lin.rank, L0, lin.floor,
                     float(lin.quadratic.eigenvalues[0]), trace, eps90, acc90, best, 0.0)
    for (kind, f, e), m in zip(levels, linearized):
        p, se = predicted_d(lin, e, s.samples, derive_seed(s.seed, "predict", "cone", label, kind, f))
        out.thresholds.append(Threshold(kind, f, e, p, se, m))
    if s.drift:
        out.drift = drift(flat, w0, data, cfg)
    out.seconds = time.perf_counter() - start
    return out


def attach_real(predictions: list[Prediction], paths: list[str], methods: tuple[str, ...] = REAL_METHODS) -> None:
    """Fill each prediction's `real` from committed results: a study CSV (columns model, D, method, d, as
    invariance.csv) or a run's leaderboard.csv (method, D, dstar90), matched by model label where the file
    has one, always by D. A threshold the run did not reach is recorded in `real_above` as the largest d it
    tested (a lower bound); an upper bound ('reached at the smallest d') is left out."""
    for path in paths:
        try:
            with open(path, newline="") as fh:
                rows = list(csv.DictReader(fh))
        except OSError as e:
            raise UserError(f"--compare {path!r}: {e.strerror}") from None
        for r in rows:
            d = r.get("d", r.get("dstar90", ""))
            bound = r.get("upper_bound", r.get("dstar90_upper_bound", "False")) in ("True", "1")
            if r.get("method") not in methods or bound or "D" not in r:
                continue
            above = largest_tested_d(r) if not d or not math.isfinite(float(d)) else None
            for pred in predictions:
                if int(float(r["D"])) != pred.D or r.get("model", pred.model) != pred.model:
                    continue
                if above:
                    pred.real_above[r["method"]] = above
                elif d:
                    pred.real[r["method"]] = float(d)


def agreement(predictions: list[Prediction], method: str = "random_affine") -> dict[str, float]:
    """Predicted d*90 against the real network's, over the models that have both: Spearman's rank
    correlation, the worst and the median ratio predicted / real, how many models, and on how many the
    prediction is at or above the real threshold (Larsen et al. derive it as an upper bound)."""
    pairs = [(p.d90.predicted, p.real[method]) for p in predictions if method in p.real and math.isfinite(p.d90.predicted)]
    if not pairs:
        return {}
    ratios = sorted(a / b for a, b in pairs)
    worst = max(ratios, key=lambda r: abs(math.log(r)))
    rho = float(spearmanr([a for a, _ in pairs], [b for _, b in pairs]).statistic) if len(pairs) >= 3 else math.nan
    return {"models": len(pairs), "spearman": rho, "worst_ratio": worst, "median_ratio": statistics.median(ratios),
            "at_or_above": sum(a >= b for a, b in pairs)}
