"""Packing: K tasks in nearly orthogonal random subspaces of one network, w = b + Σ_i A_i θ_i.

Every task i (benchmark.data.tasks: its own input permutation) has its own random affine subspace A_i
(independent seed, one kind and d for all) through one shared anchor b (w0, or w_t: a brief full-space
warm-up on a mixture of all tasks). Three regimes, each at K = 1, 2, 4, ... up to K·d ≈ D:

  apart       each task trained alone at b + A_i θ_i, then all K added: each task at the superposed w;
  sequential  task i trained in A_i with the earlier θ_j frozen in the sum; all tasks so far evaluated;
  joint       all θ_i trained together at the shared w, θ_i by its own task's loss (subspaces.superposed,
              mode "own"); `joint_sum` is the variant where every θ_i follows the summed loss.

A task's retention is its test accuracy in the pack over its test accuracy alone (apart at K = 1, the
same d and anchor). K_90 of a (regime, d, anchor) is the largest tested K up to which every task of
every tested K keeps >= 90% of its solo accuracy. Learning rates of θ are chosen per cell on validation
(the mean over the cell's tasks), like every member of `run`; test is only read for the chosen lr.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor

from benchmark.config.build import PROJECTIONS
from benchmark.config.compose import compose
from benchmark.core.errors import UserError, choice_error
from benchmark.core.seeds import derive_seed
from benchmark.data.registry import DATASETS, load_dataset
from benchmark.data.splits import Splits
from benchmark.data.tasks import Permuted, mixture, permutations, task_buffers
from benchmark.models.registry import MODELS, create_from_config
from benchmark.runner.context import resolve_device
from benchmark.training.loop import Group, PopulationResult, TrainConfig, evaluate, member_losses, train_population
from benchmark.training.prep import data_seed, init_weights
from leaderboards.threshold import crossing
from subspaces import FlatModel, IdentityProjection, Subspace, random_projection
from subspaces.curvature import hutchinson_trace, quadratic_change
from subspaces.superposed import SuperposedProjection, superpose

REGIMES = {
    "apart": "trained alone, then superposed",
    "sequential": "trained one after another, earlier θ frozen",
    "joint": "trained together, each θ_i by its own task's loss",
    "joint_sum": "trained together, every θ_i by the summed loss",
}
ANCHORS = ("w0", "wt")
RETAINED = 0.9  # K_90: every task keeps this fraction of its solo accuracy
DINT_RATIOS = (32, 64, 128, 256, 512, 1024)  # the solo ladder that measures d*90 of one task
DINT_TASKS = 4  # tasks averaged on that ladder (each its own permutation and subspace)


@dataclass(frozen=True)
class PackSettings:
    dataset: str = "digits"
    model: str = "mlp"
    model_options: tuple[tuple[str, object], ...] = (("hidden", (128,)),)
    dims: tuple[int, ...] = (150, 300, 600)
    regimes: tuple[str, ...] = tuple(REGIMES)
    anchors: tuple[str, ...] = ANCHORS
    max_tasks: int | None = None  # None: K up to floor(D / d)
    epochs: int = 10
    batch_size: int = 128
    lr_grid: tuple[float, ...] = (0.03, 0.1, 0.3, 1.0, 3.0)  # of θ: SGD, momentum 0.9 (`run`'s subspace optimizer)
    reference_lr_grid: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2)  # of the full network: Adam
    burn_in_steps: int = 32
    projection: str = "auto"
    probes: int = 16  # Hutchinson probes per task
    predicted_tasks: int = 4  # tasks whose interference is predicted at every K
    seed: int = 0
    device: str = "auto"

    def validate(self, D: int | None = None) -> None:
        """Everything that can be checked before data or store are touched; with D, also K·d <= D."""
        if self.dataset not in DATASETS:
            raise choice_error("dataset", self.dataset, DATASETS)
        if self.model not in MODELS:
            raise choice_error("model", self.model, MODELS)
        bad = [r for r in self.regimes if r not in REGIMES]
        if bad or not self.regimes:
            raise UserError(f"unknown regime {', '.join(bad) or '(none)'}; accepted: {', '.join(REGIMES)}")
        bad = [a for a in self.anchors if a not in ANCHORS]
        if bad or not self.anchors:
            raise UserError(f"unknown anchor {', '.join(bad) or '(none)'}; accepted: {', '.join(ANCHORS)}")
        if self.projection not in PROJECTIONS:
            raise choice_error("projection", self.projection, PROJECTIONS)
        if not self.dims or min(self.dims) < 1:
            raise UserError(f"--d {list(self.dims)}: subspace dimensions must be whole numbers >= 1")
        if self.max_tasks is not None and self.max_tasks < 1:
            raise UserError(f"--max-K {self.max_tasks}: the number of tasks K must be >= 1")
        for name in ("epochs", "batch_size", "probes", "predicted_tasks"):
            if getattr(self, name) < (2 if name == "probes" else 1):
                raise UserError(f"--{name.replace('_', '-')} {getattr(self, name)}: must be >= "
                                f"{2 if name == 'probes' else 1}")
        if self.burn_in_steps < 1 and "wt" in self.anchors:
            raise UserError(f"--burn-in-steps {self.burn_in_steps}: anchor wt needs >= 1 warm-up step")
        if not self.lr_grid or min(self.lr_grid) <= 0 or not self.reference_lr_grid or min(self.reference_lr_grid) <= 0:
            raise UserError(f"--lr {list(self.lr_grid)}, --reference-lr {list(self.reference_lr_grid)}: "
                            f"learning rates must be > 0")
        if D is not None:
            if max(self.dims) > D:
                raise UserError(f"--d {max(self.dims)} exceeds D = {D:,} of this model; accepted: 1 <= d <= {D:,}")
            if self.max_tasks is not None and self.max_tasks * max(self.dims) > D:
                raise UserError(f"--max-K {self.max_tasks} with d = {max(self.dims)} packs K·d = "
                                f"{self.max_tasks * max(self.dims):,} > D = {D:,} dimensions; accepted: "
                                f"K·d <= D, i.e. --max-K <= {D // max(self.dims)} at this d")


def task_counts(d: int, D: int, cap: int | None) -> list[int]:
    """The K of one d: 1, 2, 4, ... and floor(D / d) itself (K·d ≈ D), each <= cap."""
    top = D // d if cap is None else min(cap, D // d)
    ks = [2**i for i in range(int(math.log2(top)) + 1)] if top >= 1 else []
    return ks + ([top] if ks and ks[-1] != top else [])


def planned_member_epochs(s: PackSettings, D: int) -> int:
    """Member-epochs the study trains (the progress bar's total; w_t's short warm-up is not counted)."""
    L, ks = len(s.lr_grid), {d: task_counts(d, D, s.max_tasks) for d in s.dims}
    ladder = len({max(1, round(D / r)) for r in DINT_RATIOS}) * DINT_TASKS
    per_anchor = sum(max(k) for k in ks.values())  # alone
    if "sequential" in s.regimes:
        per_anchor += sum(max(k) - 1 for k in ks.values())
    per_anchor += sum(r in s.regimes for r in ("joint", "joint_sum")) * sum(sum(k) - 1 for k in ks.values())
    return s.epochs * (len(s.reference_lr_grid) + L * (ladder + len(s.anchors) * per_anchor))


@dataclass
class Context:
    """What every stage reads: the data (task 0's splits), the model with a task buffer, the tasks'
    permutations (T, n), the anchors and the training recipe."""

    settings: PackSettings
    data: Splits
    flat: FlatModel
    perms: Tensor  # (T, n): task t's input permutation
    anchors: dict[str, Tensor]  # name -> (D,)
    train: TrainConfig
    device: torch.device
    progress: Callable[[str, int], None] = lambda stage, epochs: None

    @property
    def D(self) -> int:
        return self.flat.D

    def buffers(self, tasks: list[int]) -> dict[str, Tensor]:
        """Per-member buffers, member k on task tasks[k]."""
        return task_buffers(self.flat.init_buffers(len(tasks), self.device), self.perms[tasks])

    def projection(self, d: int, task: int):
        """A_task at d: task 0's is the plain random-affine member's of `run` (same seed derivation)."""
        s = self.settings.seed
        seed = derive_seed(s, "random_projection", d) if task == 0 else derive_seed(s, "random_projection", d, "task", task)
        return random_projection(self.settings.projection, self.D, d, seed).to(self.device)

    def stacked(self, d: int, tasks: list[int]):
        """Projections of `tasks` at d as one batched projection (member k: A_{tasks[k]})."""
        first, *rest = [self.projection(d, t) for t in tasks]
        return first.stack(rest) if rest else first


def task_data_seed(seed: int, task: int) -> int:
    """Task 0 sees `run`'s data order for this seed; every other task its own."""
    return data_seed(seed) if task == 0 else derive_seed(seed, "task_data", task)


def _train(ctx: Context, groups: list[Group], tasks: list[int], stage: str,
           data: Splits | None = None) -> PopulationResult:
    return train_population(ctx.flat, groups, data or ctx.data, ctx.train, buffers=ctx.buffers(tasks),
                            on_epoch=lambda epoch: ctx.progress(stage, len(tasks)))


def _select(val: list[float]) -> int:
    """The index of the best finite mean validation accuracy (a diverged lr never wins)."""
    finite = [(v if math.isfinite(v) else -math.inf) for v in val]
    return max(range(len(finite)), key=finite.__getitem__)


def _mean(xs) -> float:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else math.nan


# --- stage 1: the full network on task 0, and the anchors -------------------------------------------


@dataclass(frozen=True)
class Reference:
    lr: float
    val_acc: float
    test_acc: float
    train_acc: float


def reference(ctx: Context) -> Reference:
    """The full network on task 0 at each candidate lr (Adam), the lr chosen on validation."""
    lrs = ctx.settings.reference_lr_grid
    w0 = ctx.anchors["w0"]
    group = Group(Subspace(w0[None].repeat(len(lrs), 1), IdentityProjection(len(lrs), ctx.D)), tuple(lrs),
                  (task_data_seed(ctx.settings.seed, 0),) * len(lrs), optimizer="adam")
    r = _train(ctx, [group], [0] * len(lrs), "reference")
    k = _select([m["val_acc"] for m in r.metrics])
    m = r.metrics[k]
    return Reference(lrs[k], m["val_acc"], m["test_acc"], m["train_acc"])


def burn_in_anchor(ctx: Context, lr: float, tasks: int) -> Tensor:
    """w_t (D,): burn_in_steps full-space Adam steps from w0 at the reference's lr, on a mixture of the
    first `tasks` tasks (each training example under a random one of them)."""
    steps = ctx.settings.burn_in_steps
    per_epoch = math.ceil(len(ctx.data.y_train) / ctx.train.batch_size)
    cfg = TrainConfig(optimizer="adam", epochs=math.ceil(steps / per_epoch), batch_size=ctx.train.batch_size,
                      eval_batch_size=ctx.train.eval_batch_size)
    kept: list[Tensor] = []
    on_step = lambda step, weights: kept.append(weights()[0].clone()) if step == steps else None
    group = Group(Subspace(ctx.anchors["w0"][None].clone(), IdentityProjection(1, ctx.D)), lr,
                  (derive_seed(ctx.settings.seed, "burn_in_data"),))
    buffers = task_buffers(ctx.flat.init_buffers(1, ctx.device), ctx.perms[:1])  # identity: data already permuted
    train_population(ctx.flat, [group], mixture(ctx.data, ctx.perms[:tasks], ctx.settings.seed), cfg,
                     on_step=on_step, buffers=buffers)
    return kept[0]


# --- stage 2: every task alone, and the intrinsic dimension of one ----------------------------------


@dataclass
class Solo:
    """Tasks 0..K-1 trained alone at (d, anchor), at every candidate lr."""

    d: int
    anchor: str
    K: int
    lrs: tuple[float, ...]
    val: Tensor  # (L, K) validation accuracy per (lr, task)
    test: Tensor  # (L, K)
    theta: Tensor  # (L, K, d)
    parts: Tensor  # (L, K, D): A_i θ_i

    @property
    def lr_index(self) -> int:
        """The solo lr, chosen on the mean validation accuracy over all K tasks."""
        return _select(self.val.nanmean(1).tolist())


def solo(ctx: Context, specs: list[tuple[int, str, int]], stage: str = "alone") -> list[Solo]:
    """Tasks 0..K-1 alone at every (d, anchor, K) of specs and every candidate lr: one population, a group
    per spec."""
    lrs = ctx.settings.lr_grid
    groups, projs, tasks = [], [], []
    for d, anchor, K in specs:
        mine = list(range(K)) * len(lrs)  # lr-major: one optimizer group per lr
        projs.append(ctx.stacked(d, mine))
        b = ctx.anchors[anchor]
        groups.append(Group(Subspace(b[None].expand(len(mine), -1).clone(), projs[-1]),
                            tuple(lr for lr in lrs for _ in range(K)),
                            tuple(task_data_seed(ctx.settings.seed, t) for t in mine)))
        tasks += mine
    r = _train(ctx, groups, tasks, stage)
    out, start = [], 0
    for (d, anchor, K), proj, theta in zip(specs, projs, r.thetas):
        n = len(lrs) * K
        metric = lambda key: torch.tensor([m[key] for m in r.metrics[start:start + n]]).view(len(lrs), K)
        with torch.no_grad():
            parts = proj(theta).view(len(lrs), K, ctx.D)
        # a diverged member's accuracies are NaN: its lr is never chosen, its retention never counts as kept
        out.append(Solo(d, anchor, K, lrs, metric("val_acc"), metric("test_acc"), theta.view(len(lrs), K, d), parts))
        start += n
    return out


@dataclass(frozen=True)
class IntrinsicDimension:
    """d*90 of one task under this protocol: the smallest d whose solo test accuracy (mean over
    DINT_TASKS tasks, lr chosen on validation per d) reaches 90% of the full network's."""

    d: float | None
    dims: tuple[int, ...]
    accs: tuple[float, ...]
    target: float


def intrinsic_dimension(ctx: Context, ref: Reference) -> IntrinsicDimension:
    dims = sorted({max(1, round(ctx.D / r)) for r in DINT_RATIOS})
    accs = [float(s.test[s.lr_index].mean()) for s in solo(ctx, [(d, "w0", DINT_TASKS) for d in dims], "d*90 ladder")]
    target = 0.9 * ref.test_acc
    return IntrinsicDimension(crossing(dims, accs, target), tuple(dims), tuple(accs), target)


# --- stage 3: the regimes ----------------------------------------------------------------------------


@dataclass
class Cell:
    """One (regime, d, anchor, K) at its lr chosen on validation: each task's accuracy in the pack and alone."""

    regime: str
    d: int
    anchor: str
    K: int
    lr: float
    val_acc: list[float]
    test_acc: list[float]
    solo_acc: list[float]  # test, alone at (d, anchor), solo lr

    @property
    def retention(self) -> list[float]:
        return [a / s if s > 0 else math.nan for a, s in zip(self.test_acc, self.solo_acc)]

    @property
    def kept(self) -> bool:
        """Every task keeps >= 90% of its solo accuracy."""
        return all(r >= RETAINED for r in self.retention)

    def row(self, d_int: float | None, D: int) -> dict:
        ret = self.retention
        return {"regime": self.regime, "d": self.d, "d_over_dint": self.d / d_int if d_int else math.nan,
                "anchor": self.anchor, "K": self.K, "K_d_over_D": self.K * self.d / D, "lr": self.lr,
                "test_acc_mean": _mean(self.test_acc), "solo_acc_mean": _mean(self.solo_acc),
                "retention_mean": _mean(ret), "retention_min": min(ret), "every_task_kept": self.kept}


def _accuracies(ctx: Context, W: Tensor, tasks: list[int]) -> tuple[list[float], list[float]]:
    """Val and test accuracy of each task k at weights W[k]: W (K, D) (rows may be one shared w, expanded)."""
    buffers = ctx.buffers(tasks)
    bs = ctx.train.eval_batch_size
    val = evaluate(ctx.flat, W, ctx.data.x_val, ctx.data.y_val, bs, buffers)[0]
    test = evaluate(ctx.flat, W, ctx.data.x_test, ctx.data.y_test, bs, buffers)[0]
    return val.tolist(), test.tolist()


def _choose(regime: str, s: Solo, K: int, per_lr: list[tuple[list[float], list[float]]]) -> Cell:
    """per_lr: (val, test) per task for each candidate lr; the cell keeps the lr with the best mean val."""
    k = _select([_mean(v) for v, _ in per_lr])
    solo_acc = s.test[s.lr_index, :K].tolist()
    return Cell(regime, s.d, s.anchor, K, s.lrs[k], per_lr[k][0], per_lr[k][1], solo_acc)


def alone_cell(regime: str, s: Solo) -> Cell:
    """K = 1 in every regime is task 0 trained alone: the solo cell itself, at the solo lr (chosen on all
    tasks' validation accuracy), so a pack of one keeps exactly 100% by construction."""
    li = s.lr_index
    return Cell(regime, s.d, s.anchor, 1, s.lrs[li], [float(s.val[li, 0])], [float(s.test[li, 0])],
                [float(s.test[li, 0])])


def apart(ctx: Context, s: Solo, ks: list[int]) -> list[Cell]:
    """Regime 1 from the solo tasks: at each K, tasks 0..K-1 evaluated at b + Σ_{i<K} A_i θ_i."""
    cells = [alone_cell("apart", s)]
    with torch.no_grad():
        for K in ks[1:]:
            per_lr = []
            for li in range(len(s.lrs)):
                w = superpose(ctx.anchors[s.anchor], s.parts[li, :K])
                per_lr.append(_accuracies(ctx, w[None].expand(K, -1), list(range(K))))
            cells.append(_choose("apart", s, K, per_lr))
    return cells


def sequential(ctx: Context, solos: list[Solo], ks: dict[int, list[int]]) -> list[Cell]:
    """Regime 2: task i trained in A_i at offset b + Σ_{j<i} A_j θ_j (frozen). Every (d, anchor) and candidate
    lr is one member carrying its own sum, all trained side by side (a group per d); after task K-1,
    tasks 0..K-1 are evaluated at each member's weights."""
    lrs = ctx.settings.lr_grid
    # Task 0 is trained alone either way: the sequence starts from the solo run's task 0 at each lr.
    offsets = {(s.d, s.anchor): ctx.anchors[s.anchor] + s.parts[:, 0] for s in solos}  # (L, D) each
    cells = [alone_cell("sequential", s) for s in solos]
    for i in range(1, max(max(k) for k in ks.values())):
        live = [s for s in solos if i < max(ks[s.d])]
        groups, dims = [], list(dict.fromkeys(s.d for s in live))
        for d in dims:
            mine = [s for s in live if s.d == d]
            groups.append(Group(Subspace(torch.cat([offsets[(s.d, s.anchor)] for s in mine]),
                                         ctx.stacked(d, [i] * (len(lrs) * len(mine)))),
                                tuple(lrs) * len(mine), (task_data_seed(ctx.settings.seed, i),) * (len(lrs) * len(mine))))
        order = [s for d in dims for s in live if s.d == d]
        r = _train(ctx, groups, [i] * (len(lrs) * len(order)), f"sequential task {i + 1}")
        K = i + 1
        for n, s in enumerate(order):
            offsets[(s.d, s.anchor)] = W = r.weights[n * len(lrs):(n + 1) * len(lrs)].detach()
            if K in ks[s.d]:
                with torch.no_grad():
                    per_lr = [_accuracies(ctx, W[li][None].expand(K, -1), list(range(K))) for li in range(len(lrs))]
                cells.append(_choose("sequential", s, K, per_lr))
    return cells


def joint(ctx: Context, solos: list[Solo], ks: dict[int, list[int]], mode: str) -> list[Cell]:
    """Regime 3: all K θ_i trained together at w = b + Σ_i A_i θ_i (subspaces.superposed). One pack per
    (d, anchor, lr); all packs of one K in one population."""
    regime = "joint" if mode == "own" else "joint_sum"
    lrs = ctx.settings.lr_grid
    cells = [alone_cell(regime, s) for s in solos]
    for K in sorted({k for v in ks.values() for k in v} - {1}):
        tasks, live = list(range(K)), [s for s in solos if K in ks[s.d]]
        groups = [Group(Subspace(ctx.anchors[s.anchor][None].expand(K, -1).clone(),
                                 SuperposedProjection(ctx.stacked(s.d, tasks), mode)),
                        lr, tuple(task_data_seed(ctx.settings.seed, t) for t in tasks)) for s in live for lr in lrs]
        r = _train(ctx, groups, tasks * len(groups), f"{regime} K={K}")
        for n, s in enumerate(live):
            per_lr = []
            for li in range(len(lrs)):
                ms = r.metrics[(n * len(lrs) + li) * K:(n * len(lrs) + li + 1) * K]
                per_lr.append(([m["val_acc"] for m in ms], [m["test_acc"] for m in ms]))
            cells.append(_choose(regime, s, K, per_lr))
    return cells


def capacity(cells: list[Cell]) -> int:
    """K_90 of one (regime, d, anchor): the largest tested K up to which every cell keeps every task >= 90%
    of its solo accuracy (0: not even K = 1, i.e. a pack of one is not the solo training)."""
    out = 0
    for c in sorted(cells, key=lambda c: c.K):
        if not c.kept:
            break
        out = c.K
    return out


# --- stage 4: predicted interference -----------------------------------------------------------------


@dataclass(frozen=True)
class Interference:
    """Task i (trained alone) when the others' displacement δ = Σ_{j≠i, j<K} A_j θ_j is added: the
    measured change of its training loss and three predictions of it."""

    d: int
    anchor: str
    K: int
    task: int
    measured: float  # L_i(w_i + δ) − L_i(w_i)
    first_order: float  # gᵀδ
    quadratic: float  # gᵀδ + ½ δᵀHδ
    isotropic: float  # ½ ‖δ‖² tr(H)/D
    delta_sq: float  # ‖δ‖²
    trace: float  # Hutchinson tr(H) at w_i
    trace_se: float


def task_loss(ctx: Context, task: int) -> Callable[[Tensor], Tensor]:
    """w (D,) -> task's mean cross-entropy over the training split (eval mode)."""
    buffers = {"perm": ctx.perms[task]}
    x, y = ctx.data.x_train, ctx.data.y_train

    def loss(w: Tensor) -> Tensor:
        return member_losses(ctx.flat(w, x, buffers)[None], y[None]).mean()

    ctx.flat.module.eval()
    return loss


def interference(ctx: Context, s: Solo, ks: list[int]) -> list[Interference]:
    """At the solo lr, for the first `predicted_tasks` tasks, at every K of the grid."""
    li = s.lr_index
    b = ctx.anchors[s.anchor]
    out = []
    for i in range(min(ctx.settings.predicted_tasks, max(ks))):
        loss = task_loss(ctx, i)
        w_i = b + s.parts[li, i]
        trace, se = hutchinson_trace(loss, w_i, ctx.settings.probes,
                                     derive_seed(ctx.settings.seed, "hutchinson", s.d, s.anchor, i))
        with torch.no_grad():
            base = float(loss(w_i))
        for K in ks:
            if K <= i or K == 1:
                continue
            delta = s.parts[li, :K].sum(0) - s.parts[li, i]
            g_delta, half_hess = quadratic_change(loss, w_i, delta)
            with torch.no_grad():
                measured = float(loss(w_i + delta)) - base
            sq = float(delta @ delta)
            out.append(Interference(s.d, s.anchor, K, i, measured, g_delta, g_delta + half_hess,
                                    0.5 * sq * trace / ctx.D, sq, trace, se))
    return out


# --- the whole study ----------------------------------------------------------------------------------


@dataclass
class PackResult:
    settings: PackSettings
    D: int
    data: str
    reference: Reference
    dint: IntrinsicDimension
    cells: list[Cell] = field(default_factory=list)
    interference: list[Interference] = field(default_factory=list)
    times: dict[str, float] = field(default_factory=dict)

    def capacities(self) -> list[dict]:
        """K_90 per (regime, d, anchor), with the largest K tested."""
        keys = dict.fromkeys((c.regime, c.d, c.anchor) for c in self.cells)
        out = []
        for regime, d, anchor in keys:
            mine = [c for c in self.cells if (c.regime, c.d, c.anchor) == (regime, d, anchor)]
            out.append({"regime": regime, "d": d, "d_over_dint": d / self.dint.d if self.dint.d else math.nan,
                        "anchor": anchor, "K_90": capacity(mine), "K_max": max(c.K for c in mine)})
        return out


def make_context(s: PackSettings, progress=lambda stage, epochs: None) -> Context:
    device = resolve_device(s.device)
    raw = compose([f"dataset={s.dataset}", f"model={s.model}"])
    raw["model"].update({k: (list(v) if isinstance(v, tuple) else v) for k, v in s.model_options})
    data = load_dataset(raw["dataset"]).to(device)
    make = lambda: Permuted(create_from_config(raw["model"], data.input_shape, data.num_classes), data.input_shape)
    flat = FlatModel.of(make().to(device))
    s.validate(flat.D)
    n_tasks = max(max(task_counts(d, flat.D, s.max_tasks)) for d in s.dims)
    perms = permutations(math.prod(data.input_shape), max(n_tasks, DINT_TASKS), s.seed).to(device)
    cfg = TrainConfig(optimizer="sgd", momentum=0.9, weight_decay=0.0, epochs=s.epochs, batch_size=s.batch_size,
                      eval_batch_size=256)  # 256: the hidden activations of a large population stay small
    anchors = {"w0": init_weights(make, s.seed).to(device)}
    return Context(s, data, flat, perms, anchors, cfg, device, progress)


def study(ctx: Context, say=print) -> PackResult:
    """The stages in order: the reference and the anchors, d*90 of one task, every task alone at every
    (d, anchor), then each regime over all of them, then the predicted interference."""
    s = ctx.settings
    times: dict[str, float] = {}
    clock = [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        times[name] = now - clock[0]
        clock[0] = now

    ref = reference(ctx)
    say(f"reference: full network on task 0, lr {ref.lr:g} chosen on validation: test {ref.test_acc:.3f}, "
        f"train {ref.train_acc:.3f}")
    ks = {d: task_counts(d, ctx.D, s.max_tasks) for d in s.dims}
    if "wt" in s.anchors:
        ctx.anchors["wt"] = burn_in_anchor(ctx, ref.lr, max(max(k) for k in ks.values()))
    lap("reference and anchors")
    dint = intrinsic_dimension(ctx, ref)
    lap("d*90 ladder")
    say(f"d*90 of one task: {'not reached' if dint.d is None else round(dint.d)} (solo ladder d = "
        f"{list(dint.dims)}, mean test acc {[round(a, 3) for a in dint.accs]}, target {dint.target:.3f})")
    result = PackResult(s, ctx.D, ctx.data.name, ref, dint, times=times)
    solos = solo(ctx, [(d, anchor, max(ks[d])) for d in s.dims for anchor in s.anchors])
    lap("alone")
    for regime in s.regimes:
        if regime == "apart":
            result.cells += [c for x in solos for c in apart(ctx, x, ks[x.d])]
        elif regime == "sequential":
            result.cells += sequential(ctx, solos, ks)
        else:
            result.cells += joint(ctx, solos, ks, "own" if regime == "joint" else "sum")
        lap(regime)
    if "apart" in s.regimes:
        result.interference = [i for x in solos for i in interference(ctx, x, ks[x.d])]
        lap("interference")
    return result
