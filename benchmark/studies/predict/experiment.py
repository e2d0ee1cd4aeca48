"""`python -m benchmark predict`: how many dimensions will my model need, before paying for the sweep?

For a model and dataset of `run` (the same overrides), nothing is trained by default: the network is
linearized at its initialization w0 (seed 0, the initialization every method of `run` starts from), where a
squared loss on one-hot targets is exactly a quadratic with Hessian the Gauss–Newton matrix H = JᵀJ/N
(subspaces/theory/linearized.py). Its threshold for a Haar-random affine subspace through w0 is
predicted as d(ε) = r − δ(C_r), the statistical dimension of the sub-level set's cone (cones.py), r = rank J.
With burn_in = (t, ...) the same is done at each w_t, the weights after t steps of `run`'s full-space run
from w0 (its optimizer and centre lr, seed 0's data order): the prediction for burn-in affine subspaces,
ε then a fraction of L(w_t). Where w_t alone reaches the target (ε90 >= L(w_t)) the prediction is d = 0,
"θ = 0 reaches it", as `run` reports such a threshold.

The quadratic comes by one of two routes, said in every row:

- exact: J stored (N·C x D floats), H's eigendecomposition; where the model is small (D <= exact_max_D).
  The linearized network's own threshold is then also *measured*, exactly, for D <= measure_max_D:
  the best loss of `draws` Haar-random subspaces for every d by nested least squares on the r curved
  coordinates (linearized.min_loss_curves, O(r³) a draw). `--route exact --measure-max-D 16000` takes the
  default MLP (D = 15,210) in about 28 minutes and 12.3 GB here (J and H's eigenvectors dominate).
- slq: matrix-free (subspaces/theory/slq.py): the density of H from Lanczos on Gaussian probes and the
  loss per eigenvalue from Lanczos on the initial residual, 2·(probes + 2)·steps + 1 + steps Jacobian
  products per anchor (`slq_products`: 3,151 at the defaults), each about one pass over the training set:
  seconds for an MLP, about 1.2 s a product for Conv-2 on 3,500 images here. Measured against the exact
  route: d(ε) within 1.2% of D; d*90 less close, since its ε90 comes from a flow in the Krylov space (the
  default MLP: 6,869 against the exact 5,554, 8.6% of D; README, "The default MLP, measured exactly").

ε is a loss level, given as a fraction of L(w0) (as the theory study), and separately ε90: the training
loss at which the linearized network, trained by gradient flow from w0, first reaches 90% of the best
validation accuracy its flow reaches — the benchmark's d*90 rule with the linearized network as its own
reference, so that d(ε) and d*90 are never confused. The theory covers random subspaces only: it does not
predict pruning or lottery subspaces. What it is compared with, and how far off it is for real networks
(cross-entropy, Adam, far from w0), is in the README ("Predicting d*90 before training").
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from scipy.stats import spearmanr

from benchmark.config.build import build_config
from benchmark.config.compose import compose
from benchmark.core.errors import UserError
from benchmark.core.seeds import derive_seed
from benchmark.runner import provenance
from benchmark.runner.context import setup
from benchmark.training.loop import Group, steps_per_epoch, train_population
from benchmark.training.prep import data_seed, init_weights
from leaderboards.compare import largest_tested_d
from subspaces import IdentityProjection, Subspace
from subspaces.theory import linearized as L
from subspaces.theory import slq
from subspaces.theory.cones import project, sizes, sublevel_cone
from subspaces.theory.quadratic import crossing, success_probability

ROUTES = ("auto", "exact", "slq")
TARGET = 0.9  # fraction of the best accuracy: the benchmark's d*90
REAL_METHODS = ("random_affine", "burn_in_affine")  # the subspaces the theory is about


@dataclass(frozen=True)
class PredictSettings:
    eps: tuple[float, ...] = (0.3, 0.5, 0.7)  # fractions of L(anchor)
    burn_in: tuple[int, ...] = (0,)  # the anchors: w_t after t full-space steps (0: w0)
    route: str = "auto"  # auto: exact up to exact_max_D, slq above
    drift: bool = False  # also train the real network from w0 (run's full-space recipe) and measure how far it left
    exact_max_D: int = 4000
    measure_max_D: int = 3000  # measure the linearized threshold exactly (O(r³) and r x r/2 floats a draw)
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
        if not self.burn_in or min(self.burn_in) < 0 or len(set(self.burn_in)) < len(self.burn_in):
            raise UserError(f"--burn-in {list(self.burn_in)}: distinct step counts t >= 0 (0: the curvature at w0)")
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
    from w0 with `run`'s recipe (cross-entropy, its optimizer and centre lr, its epochs), the same loop;
    measured from the prediction's anchor (w0, or w_t on that run)."""

    distance: float  # ‖w_T − anchor‖ / ‖anchor‖
    ntk_change: float  # ‖K_T − K_anchor‖_F / ‖K_anchor‖_F, K = J Jᵀ on `examples` training examples
    examples: int
    steps: int
    test_accuracy: float


@dataclass
class Prediction:
    """One model at one anchor (w0, or w_t after t burn-in steps): the quadratic it came from and its thresholds."""

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
    accuracy90: float  # the linearized flow's validation accuracy at ε90 (d90.eps)
    best_accuracy: float
    seconds: float
    thresholds: list[Threshold] = field(default_factory=list)
    real: dict[str, float] = field(default_factory=dict)  # method -> its measured d*90, where given
    real_above: dict[str, float] = field(default_factory=dict)  # method -> d*90 not reached up to this d
    drift: Drift | None = None
    t: int = 0  # burn-in steps of the anchor: 0 is w0
    real_at_theta0: set[str] = field(default_factory=set)  # methods whose anchor alone reached the target

    @property
    def d90(self) -> Threshold:
        return next(t for t in self.thresholds if t.kind == "target90")

    @property
    def methods(self) -> tuple[str, ...]:
        """The real methods this prediction is about: a random affine subspace through its anchor (at t = 0
        burn-in affine is one through w0 too)."""
        return REAL_METHODS if self.t == 0 else ("burn_in_affine",)

    @property
    def real_d90(self) -> tuple[str, float] | None:
        """(method, the real network's d*90) for the first of `methods` that was measured, else None."""
        return next(((m, self.real[m]) for m in self.methods if m in self.real), None)


def slq_products(s: PredictSettings) -> int:
    """The most Jacobian products (a jvp or a vjp, each about one pass over its examples) the slq route
    makes per anchor: `probes` Lanczos runs and one on r0, two products a step, the Krylov flow (one vjp
    more) and one validation jvp per flow coordinate; fewer where a Krylov space closes early."""
    return 2 * (s.probes + 2) * s.steps + 1 + s.steps


def counted(p: slq.Products, tick: Callable[[], None]) -> slq.Products:
    """p with tick() called before each of its Jacobian products (the progress of the slq route)."""
    def jvp(v):
        tick()
        return p.jvp(v)

    def vjp(u):
        tick()
        return p.vjp(u)

    return dataclasses.replace(p, jvp=jvp, vjp=vjp)


def quadratic(flat, w0, data, route: str, s: PredictSettings, tick: Callable[[], None] = lambda: None):
    """(Linearized for the cone, Flow for ε90, J_val B: the validation outputs per flow coordinate, tr H),
    the network linearized at w0 (D,): any anchor. tick: called once per Jacobian product (slq route)."""
    x, Y = data.x_train, L.one_hot(data.y_train, data.num_classes)
    if route == "exact":
        J, f0 = L.jacobian(flat, w0, x), L.outputs(flat, w0, x)
        lin = L.linearize(J, Y, f0)
        del J
        flow = lin.flow()
        per = L.jacobian(flat, w0, data.x_val) @ flow.basis
        return lin, flow, per, float(lin.quadratic.eigenvalues.sum())
    with L._float64(flat):  # slq.estimate's stages, its products kept for the Krylov flow
        train = counted(slq.products(flat, w0, x), tick)
        f0 = flat(w0.detach().to(torch.float64), x.to(torch.float64)).detach()
        spectrum = slq.spectrum(train, Y, f0, s.probes, s.steps, derive_seed(s.seed, "predict", "probes"))
        lin = slq.synthesize(spectrum)
        flow = slq.krylov_flow(train, Y, f0, lin.floor, s.steps)
        val = counted(slq.products(flat, w0, data.x_val), tick)
        per = torch.stack([val.jvp(b).reshape(-1) for b in flow.basis.T], dim=1)
    return lin, flow, per, float((spectrum.density[0] * spectrum.density[1]).sum())


def predicted_d(lin: L.Linearized, eps: float, samples: int, seed: int) -> tuple[float, float]:
    """(r − δ(C_r) at ε, its Monte Carlo standard error); (inf, 0) when ε is at or below the floor, (0, 0)
    when the anchor is already at or below ε (θ = 0 reaches it)."""
    if eps <= lin.floor:
        return math.inf, 0.0
    if eps >= lin.initial_loss:
        return 0.0, 0.0
    size = sizes(functools.partial(project, sublevel_cone(lin.curved(), eps - lin.floor)), lin.rank, samples, seed)
    # δ <= r exactly; a Monte Carlo δ above r (ε just below L(anchor), nearly every direction descends) reads 0
    return max(0.0, lin.rank - size.statistical_dimension), size.statistical_dimension_se


def measured_d(lin: L.Linearized, eps: list[float], draws: int, seed: int) -> list[float]:
    """The linearized network's d where P_s(d, ε) reaches 1/2, exactly: the best loss of `draws` Haar-random
    subspaces for every d (L.min_loss_curves: least squares on the r curved coordinates)."""
    curves = L.min_loss_curves(lin, draws, seed)
    return [crossing(p, 0.5) for p in success_probability(curves, torch.tensor(eps, dtype=torch.float64))]


def full_run(flat, w0, data, cfg, at: set[int], whole: bool):
    """The real network trained from w0 (D,) in full space with `run`'s recipe (the one loop, the data order
    of seed 0): ({t: w_t (D,)} for every t in `at`, the run) — the whole run where `whole`, else only as many
    epochs as the largest t needs."""
    spe = steps_per_epoch(len(data.y_train), cfg.train.batch_size)
    full = cfg.train.epochs * spe
    late = [t for t in at if t > full]
    if late:
        raise UserError(f"--burn-in {max(late)} exceeds the full-space run, which has {full} steps "
                        f"({cfg.train.epochs} epochs x {spe}); accepted: 0 <= t <= {full}")
    epochs = cfg.train.epochs if whole else max(1, math.ceil(max(at, default=0) / spe))
    snapshots = {0: w0} if 0 in at else {}

    def on_step(step, weights):
        if step in at:
            snapshots[step] = weights()[0].clone()

    run = train_population(flat, [Group(Subspace(w0[None].clone(), IdentityProjection(1, flat.D)), cfg.train.lr,
                                        (data_seed(0),))], data, dataclasses.replace(cfg.train, epochs=epochs),
                           on_step=on_step if set(at) - {0} else None)
    return snapshots, run


def drift(flat, anchor, run, data, examples: int = 100) -> Drift:
    """Compare the full run's end w_T with the anchor (D,): distance and the change of the empirical NTK on
    the first `examples` training examples."""
    wT = run.weights[0]
    x = data.x_train[:examples]
    K0, KT = (J @ J.T for J in (L.jacobian(flat, w, x) for w in (anchor, wT)))
    return Drift(float((wT - anchor).norm() / anchor.norm()), float((KT - K0).norm() / K0.norm()), len(x), run.steps,
                 float(run.metrics[0]["test_acc"]))


def predict(label: str | None, overrides: list[str], s: PredictSettings,
            progress: Callable[[str, str, int], contextlib.AbstractContextManager] | None = None) -> list[Prediction]:
    """One model: compose its `run` config, linearize at each anchor (w0, w_t), flow to ε90, predict (and
    measure) d(ε); one Prediction per anchor, in the order of s.burn_in. label: the model's name in the
    report (None: the config's model name). progress(label, anchor, most products): a context (a bar) whose
    update() is called per Jacobian product of that anchor (slq route; the exact route's seconds show none)."""
    start = time.perf_counter()
    cfg = build_config(compose([*overrides, "device=cpu"]))  # float64 linear algebra: the CPU's
    label = label or str(cfg.model["name"])
    _, data, make, flat = setup(cfg)
    w0 = init_weights(make, 0)
    anchors, run = {0: w0}, None
    if s.drift or set(s.burn_in) - {0}:
        anchors, run = full_run(flat, w0, data, cfg, set(s.burn_in), whole=s.drift)
    out = []
    route = s.route_for(flat.D)
    for t in s.burn_in:
        bar = (progress(label, f"t = {t}" if t else "w0", slq_products(s)) if progress and route == "slq"
               else contextlib.nullcontext())
        with bar as b:
            p = predict_at(label, t, flat, anchors[t], data, s, route, b.update if b else (lambda: None))
        if s.drift:
            p.drift = drift(flat, anchors[t], run, data)
        p.seconds = time.perf_counter() - start  # the first anchor's includes the model's setup and the run
        start = time.perf_counter()
        out.append(p)
    return out


def predict_at(label: str, t: int, flat, anchor, data, s: PredictSettings, route: str,
               tick: Callable[[], None] = lambda: None) -> Prediction:
    """The thresholds of the network linearized at the anchor (D,), w_t after t burn-in steps, by `route`
    (s.route_for(D))."""
    lin, flow, per, trace = quadratic(flat, anchor, data, route, s, tick)
    losses, accs = L.flow_accuracy(flow, per, L.outputs(flat, anchor, data.x_val), data.y_val)
    eps90, acc90, best = L.loss_at_accuracy(losses, accs, TARGET)
    L0 = lin.initial_loss
    levels = [("fraction", f, f * L0) for f in s.eps] + [("target90", eps90 / L0, eps90)]
    measure = route == "exact" and flat.D <= s.measure_max_D
    at = ("t", t) if t else ()  # w0's seeds are those of the predictions made before burn-in existed
    linearized = (measured_d(lin, [e for *_, e in levels], s.draws, derive_seed(s.seed, "predict", "draws", label, *at))
                  if measure else [math.nan] * len(levels))
    out = Prediction(label, flat.D, lin.N, data.num_classes, route, lin.rank, L0, lin.floor,
                     float(lin.quadratic.eigenvalues[0]), trace, acc90, best, 0.0, t=t)
    for (kind, f, e), m in zip(levels, linearized):
        # a fraction's cone is seeded by the number the user gave, ε90's by its name: a seed hashed from a
        # computed level would let the machine's rounding of ε90 draw another Monte Carlo sample
        level = f if kind == "fraction" else "eps90"
        p, se = predicted_d(lin, e, s.samples, derive_seed(s.seed, "predict", "cone", label, kind, level, *at))
        out.thresholds.append(Threshold(kind, f, e, p, se, m))
    return out


def attach_real(predictions: list[Prediction], paths: list[str]) -> None:
    """Fill each prediction's `real` from committed results: a study CSV (columns model, D, method, d, as
    invariance.csv; burnin.csv's `value` is the burn-in t) or a run's leaderboard.csv (method, D, dstar90;
    its burn-in t read from the provenance.json beside it), matched by model label where the file has one,
    always by D, and by the anchor's t; only d*90 (a study's rows at fraction 0.9). A threshold the run did
    not reach is recorded in `real_above` as the largest d it tested (a lower bound), one its anchor alone
    reached in `real_at_theta0`; any other upper bound ('reached at the smallest d') is left out."""
    for path in paths:
        try:
            with open(path, newline="") as fh:
                rows = list(csv.DictReader(fh))
        except OSError as e:
            raise UserError(f"--compare {path!r}: {e.strerror}") from None
        run_t = _burn_in_of(Path(path).parent)
        for r in rows:
            d = r.get("d", r.get("dstar90", ""))
            bound = r.get("upper_bound", r.get("dstar90_upper_bound", "False")) in ("True", "1")
            theta0 = r.get("at_theta0", r.get("reached_at_theta0", "False")) in ("True", "1")
            if (r.get("method") not in REAL_METHODS or "D" not in r or (bound and not theta0)
                    or float(r.get("fraction") or TARGET) != TARGET):
                continue
            t = int(float(r["value"])) if "t" in r else (run_t if r["method"] == "burn_in_affine" else 0)
            above = largest_tested_d(r) if not d or not math.isfinite(float(d)) else None
            for pred in predictions:
                if (int(float(r["D"])) != pred.D or r.get("model", pred.model) != pred.model or t != pred.t
                        or r["method"] not in pred.methods):
                    continue
                if theta0:
                    pred.real_at_theta0.add(r["method"])
                elif above:
                    pred.real_above[r["method"]] = above
                elif d:
                    pred.real[r["method"]] = float(d)


def _burn_in_of(folder: Path) -> int:
    """The burn_in_steps of the run whose result lies in `folder` (0 where it has no provenance)."""
    try:
        return int(provenance.read(folder)["config"]["burn_in_steps"])
    except (UserError, OSError, KeyError, TypeError, ValueError):
        return 0


def agreement(predictions: list[Prediction], burn_in: bool = False) -> dict[str, float]:
    """Predicted d*90 against the real network's (`Prediction.real_d90`), over the predictions at w0 (or,
    with burn_in, at w_t, t > 0) that have both and a positive prediction: Spearman's rank correlation, the
    worst and the median ratio predicted / real, how many, and on how many the prediction is at or above
    the real threshold (Larsen et al. derive it as an upper bound)."""
    mine = [p for p in predictions if (p.t > 0) == burn_in]
    pairs = [(p.d90.predicted, p.real_d90[1]) for p in mine if p.real_d90 and 0 < p.d90.predicted < math.inf]
    # both say the anchor alone (nearly) reaches the target, the prediction within two Monte Carlo standard
    # errors of 0 (or below one direction): agreement that no ratio can express
    theta0 = sum(p.d90.predicted <= max(1.0, 2 * p.d90.predicted_se) and bool(p.real_at_theta0 & set(p.methods))
                 for p in mine)
    if not pairs:
        return {"models": 0, "theta0_both": theta0} if theta0 else {}
    ratios = sorted(a / b for a, b in pairs)
    worst = max(ratios, key=lambda r: abs(math.log(r)))
    rho = float(spearmanr([a for a, _ in pairs], [b for _, b in pairs]).statistic) if len(pairs) >= 3 else math.nan
    return {"models": len(pairs), "theta0_both": theta0, "spearman": rho, "worst_ratio": worst, "median_ratio": statistics.median(ratios),
            "at_or_above": sum(a >= b for a, b in pairs)}
