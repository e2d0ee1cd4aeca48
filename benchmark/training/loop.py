"""The one training loop. Every method, full-space training included (A = I), goes through it.

It trains a population: groups of batched subspaces (one kind and one d per group), all members
advancing in the same step. Each member has its own data stream seed; members that share a seed see
the same batches, as they would alone. The optimizer acts on θ; because Adam and SGD are elementwise,
one optimizer over the stacked θ (K, d) is exactly K independent optimizers.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from benchmark.core.schema import Schema
from benchmark.core.seeds import derive_seed
from benchmark.data.splits import Splits
from benchmark.training.description import quantize
from subspaces import FlatModel, Subspace

OPTIMIZERS = ("adam", "sgd")


_DEFAULTS = Schema()


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of subspace training. lr is for θ; weight_decay pulls θ to 0, i.e. w to b."""

    optimizer: str = _DEFAULTS.optimizer  # defaults: `python -m benchmark run`'s own (benchmark.core.schema)
    lr: float = _DEFAULTS.lr
    momentum: float = _DEFAULTS.momentum
    weight_decay: float = _DEFAULTS.weight_decay
    epochs: int = _DEFAULTS.epochs
    batch_size: int = _DEFAULTS.batch_size
    eval_batch_size: int = 2048


@dataclass(frozen=True)
class Group:
    """Members that share one kind of subspace and one d: one projection call per step for all of them
    (so a matrix they share is read once), each member with its own learning rate and data order."""

    subspace: Subspace
    lr: float | tuple[float, ...]  # one for all members, or one per member
    data_seeds: tuple[int, ...]  # one per member: which data order it sees
    optimizer: str | None = None  # of θ; None: the TrainConfig's

    def __post_init__(self):
        if len(self.data_seeds) != self.subspace.K:
            raise ValueError(f"{len(self.data_seeds)} data seeds for {self.subspace.K} members")
        if isinstance(self.lr, tuple) and len(self.lr) != self.subspace.K:
            raise ValueError(f"{len(self.lr)} learning rates for {self.subspace.K} members")

    @property
    def lrs(self) -> tuple[float, ...]:
        return self.lr if isinstance(self.lr, tuple) else (self.lr,) * self.subspace.K

    def blocks(self) -> list[tuple[slice, float]]:
        """Runs of consecutive members with one learning rate: (members, lr), in member order."""
        out: list[tuple[slice, float]] = []
        for k, lr in enumerate(self.lrs):
            if out and out[-1][1] == lr:
                out[-1] = (slice(out[-1][0].start, k + 1), lr)
            else:
                out.append((slice(k, k + 1), lr))
        return out


@dataclass
class PopulationResult:
    """Per member, in group order: final weights W (K, D), status, metrics and per-epoch curves;
    thetas: each group's final θ (K_g, d), detached."""

    weights: Tensor
    status: list[str]
    reasons: list[str | None]
    metrics: list[dict[str, float]]
    curves: list[dict[str, list[float]]]
    wall_time_s: float
    steps: int
    thetas: list[Tensor] = field(default_factory=list)


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    return math.ceil(n_train / batch_size)


def epoch_order(data_seed: int, epoch: int, n: int) -> Tensor:
    """The data order of one epoch for one data stream; the same for every member of that stream."""
    g = torch.Generator().manual_seed(derive_seed(data_seed, "epoch", epoch))
    return torch.randperm(n, generator=g)


def member_losses(logits: Tensor, y: Tensor) -> Tensor:
    """Cross-entropy per member and example: logits (K, B, C), y (K, B) -> (K, B). As one (K·B, C)
    batch: the 2-d loss over a transposed (K, C, B) view costs a small model's step about 10%."""
    K, B, C = logits.shape
    return F.cross_entropy(logits.reshape(K * B, C), y.reshape(K * B), reduction="none").view(K, B)


@torch.no_grad()
def evaluate(model: FlatModel, W: Tensor, x: Tensor, y: Tensor, batch_size: int,
             buffers: dict[str, Tensor] | None = None) -> tuple[Tensor, Tensor]:
    """Accuracy and mean cross-entropy of each member in eval mode: W (K, D) -> (K,), (K,).

    buffers: the members' running statistics (default: the module's initial ones for every member)."""
    K = W.shape[0]
    if buffers is None:
        buffers = model.init_buffers(K, W.device)
    correct = torch.zeros(K, device=W.device)
    loss = torch.zeros(K, device=W.device)
    model.module.eval()
    for i in range(0, len(y), batch_size):
        xb, yb = x[i : i + batch_size].to(W.device), y[i : i + batch_size]  # a streamed x is copied per batch
        logits = model.batched(W, xb, shared_input=True, buffers=buffers)  # (K, B, C)
        correct += (logits.argmax(-1) == yb).sum(-1)
        loss += member_losses(logits, yb.expand(K, -1)).sum(-1)
    return correct / len(y), loss / len(y)


def _make_optimizer(params: list[dict], cfg: TrainConfig, name: str) -> torch.optim.Optimizer:
    """torch's fused kernel (one pass over all parameters) where the device has one, else its foreach one:
    the same update as the per-tensor loop up to float rounding, and what a careful user would pick."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; accepted: {', '.join(OPTIMIZERS)}")
    make = {"adam": lambda **kw: torch.optim.Adam(params, weight_decay=cfg.weight_decay, **kw),
            "sgd": lambda **kw: torch.optim.SGD(params, momentum=cfg.momentum, weight_decay=cfg.weight_decay, **kw)}
    try:
        return make[name](fused=True)
    except RuntimeError:  # no fused kernel for this device or dtype
        return make[name](foreach=True)


class Population:
    """The trainable state of a population: θ per group, one optimizer, and one training step.

    The step is the whole of training's inner loop; `train_population` and the benchmarks both use it.
    """

    def __init__(self, model: FlatModel, groups: list[Group], cfg: TrainConfig,
                 buffers: dict[str, Tensor] | None = None):
        self.model, self.groups = model, groups
        # θ of a group is one leaf tensor per run of members sharing a learning rate (an optimizer param
        # group each); the projection sees them concatenated, (K_g, d), in one call.
        self.thetas = [[g.subspace.init_theta()[members].requires_grad_() for members, _ in g.blocks()]
                       for g in groups]
        # One optimizer per kind in use (a group may override the config's, e.g. SGD for θ of general
        # subspaces); each acts elementwise on its own θ, so members stay independent.
        params: dict[str, list[dict]] = {}
        for g, ts in zip(groups, self.thetas):
            for t, (_, lr) in zip(ts, g.blocks()):
                params.setdefault(g.optimizer or cfg.optimizer, []).append({"params": [t], "lr": lr})
        self.opts = [_make_optimizer(p, cfg, name) for name, p in params.items()]
        self.K = sum(g.subspace.K for g in groups)
        # Per-member module state, (K, ...) each: running statistics, or a member's task (benchmark.data.tasks).
        self.buffers = buffers if buffers is not None else model.init_buffers(self.K, groups[0].subspace.offset.device)

    def theta(self) -> list[Tensor]:
        """Each group's θ (K_g, d), detached."""
        return [(ts[0] if len(ts) == 1 else torch.cat(ts)).detach() for ts in self.thetas]

    def weights(self, theta_map: Callable[[Tensor], Tensor] | None = None) -> Tensor:
        """W (K, D), members in group order; theta_map, if given, is applied to each group's θ (K_g, d) first."""
        same = lambda t: t
        parts = [g.subspace.weights((theta_map or same)(ts[0] if len(ts) == 1 else torch.cat(ts)))
                 for g, ts in zip(self.groups, self.thetas)]
        return parts[0] if len(parts) == 1 else torch.cat(parts)  # a cat of one would copy (K, D)

    def step(self, xb: Tensor, yk: Tensor, shared_input: bool) -> Tensor:
        """One optimizer step for every member. xb: (B, ...) if shared_input else (K, B, ...); yk: (K, B).

        Returns the per-member training loss (K,) before the step."""
        self.model.module.train()
        logits = self.model.batched(self.weights(), xb, shared_input, self.buffers)  # (K, B, C)
        loss = member_losses(logits, yk).mean(-1)  # (K,)
        for opt in self.opts:
            opt.zero_grad(set_to_none=True)
        loss.sum().backward()  # members are independent: d(sum)/dθ_k = dL_k/dθ_k
        for opt in self.opts:
            opt.step()
        return loss.detach()


def train_population(
    model: FlatModel,
    groups: list[Group],
    data: Splits,
    cfg: TrainConfig,
    on_step: Callable[[int, Callable[[], Tensor]], None] | None = None,
    on_epoch: Callable[[int], None] | None = None,
    quantize_bits: tuple[int, ...] = (),
    buffers: dict[str, Tensor] | None = None,
) -> PopulationResult:
    """Train every member of every group for cfg.epochs epochs; evaluate on val each epoch, test at the end
    (and both at θ = 0 before training: theta0_val_acc, theta0_test_acc, the model at its offset b).

    on_step(step, weights_fn) is called after every optimizer step (step counts from 1);
    weights_fn() returns the current W (K, D) detached, computed only when asked for.
    A member whose training loss turns non-finite is stopped (held at its offset) and reported FAILED.
    quantize_bits: at the end, each member is also evaluated with θ rounded to each of these bit widths
    (benchmark.training.description.quantize): val_acc.bits<b>, test_acc.bits<b>, a few forward passes each.
    buffers: the members' initial module state, {name: (K, ...)} (default: the module's own, per member).
    """
    start = time.perf_counter()
    pop = Population(model, groups, cfg, buffers)
    # Each member at θ = 0, i.e. w = b (its anchor, masked for pruning): what the subspace starts from
    # and what training in it must be credited beyond.
    W = pop.weights().detach()
    at_b = [evaluate(model, W, x, y, cfg.eval_batch_size, pop.buffers)[0]
            for x, y in ((data.x_val, data.y_val), (data.x_test, data.y_test))]
    alive, curves, val_loss, step = _train_epochs(pop, data, cfg, on_step, on_epoch)
    W = pop.weights().detach()
    final = _final_evaluation(pop, W, data, cfg, quantize_bits)
    wall = time.perf_counter() - start
    status, reasons, metrics = _member_metrics(alive, curves, final, val_loss, at_b, step, cfg)
    return PopulationResult(W, status, reasons, metrics, curves, wall, step, pop.theta())


def _epoch_batches(pop: Population, data: Splits, cfg: TrainConfig, epoch: int):
    """One epoch's training batches, (xb, yk, shared): every member draws its own order from its data seed
    (epoch_order); members with one seed share each batch, xb (B, ...), else xb is (K, B, ...); yk: (K, B)."""
    seeds = [s for g in pop.groups for s in g.data_seeds]
    streams = sorted(set(seeds))
    device = pop.groups[0].subspace.offset.device
    member_stream = torch.tensor([streams.index(s) for s in seeds], device=device)
    shared = len(streams) == 1
    n = len(data.y_train)
    orders = torch.stack([epoch_order(s, epoch, n) for s in streams]).to(device)  # (S, n)
    for b in range(steps_per_epoch(n, cfg.batch_size)):
        idx = orders[:, b * cfg.batch_size : (b + 1) * cfg.batch_size]  # (S, B)
        if shared:
            yield data.take(data.x_train, idx[0]), data.y_train[idx[0]].expand(pop.K, -1), True
        else:
            idx = idx[member_stream]  # (K, B)
            yield data.take(data.x_train, idx), data.y_train[idx], False


def _train_epochs(pop: Population, data: Splits, cfg: TrainConfig, on_step, on_epoch):
    """cfg.epochs epochs of Population.step; a member whose epoch loss is non-finite is parked at its offset.
    Returns (alive (K,) bool, curves [{"val_acc", "train_loss"}] per member, the last epoch's val loss (K,)
    or None, steps taken)."""
    device = pop.groups[0].subspace.offset.device
    alive = torch.ones(pop.K, dtype=torch.bool, device=device)
    curves: list[dict[str, list[float]]] = [{"val_acc": [], "train_loss": []} for _ in range(pop.K)]
    per_epoch = steps_per_epoch(len(data.y_train), cfg.batch_size)
    step, val_loss = 0, None
    for epoch in range(cfg.epochs):
        running = torch.zeros(pop.K, device=device)
        for xb, yk, shared in _epoch_batches(pop, data, cfg, epoch):
            running += pop.step(xb, yk, shared)
            if not bool(alive.all()):
                _park(pop.thetas, pop.groups, alive)
            step += 1
            if on_step is not None:
                on_step(step, lambda: pop.weights().detach())
        running /= per_epoch
        alive &= torch.isfinite(running)
        W = pop.weights().detach()
        val_acc, val_loss = evaluate(pop.model, W, data.x_val, data.y_val, cfg.eval_batch_size, pop.buffers)
        for k in range(pop.K):
            curves[k]["val_acc"].append(float(val_acc[k]))
            curves[k]["train_loss"].append(float(running[k]))
        if on_epoch is not None:
            on_epoch(epoch)
    return alive, curves, val_loss, step


def _final_evaluation(pop: Population, W: Tensor, data: Splits, cfg: TrainConfig,
                      quantize_bits: tuple[int, ...]) -> dict[str, Tensor]:
    """{metric: (K,)} of the trained members W (K, D): test and train accuracy and loss, and the val and test
    accuracy with θ rounded to each of quantize_bits."""
    ev = lambda W, x, y: evaluate(pop.model, W, x, y, cfg.eval_batch_size, pop.buffers)
    out = dict(zip(("test_acc", "test_loss"), ev(W, data.x_test, data.y_test)))
    out.update(zip(("train_acc", "train_loss"), ev(W, data.x_train, data.y_train)))
    with torch.no_grad():
        for b in quantize_bits:
            Wb = pop.weights(lambda t: quantize(t, b))
            for split, x, y in (("val", data.x_val, data.y_val), ("test", data.x_test, data.y_test)):
                out[f"{split}_acc.bits{b}"] = ev(Wb, x, y)[0]
    return out


def _member_metrics(alive: Tensor, curves: list[dict], final: dict[str, Tensor], val_loss: Tensor | None,
                    at_b: list[Tensor], step: int, cfg: TrainConfig) -> tuple[list[str], list, list[dict]]:
    """(status, failure reason, metrics) per member. A stopped member's numbers would describe its offset,
    not a trained model: they are reported NaN."""
    status, reasons, metrics = [], [], []
    for k in range(len(curves)):
        ok = bool(alive[k]) and math.isfinite(float(final["test_loss"][k]))
        status.append("FINISHED" if ok else "FAILED")
        reasons.append(None if ok else _divergence_reason(curves[k]["train_loss"]))
        value = (lambda v: float(v)) if ok else (lambda v: float("nan"))
        metrics.append({
            "test_acc": value(final["test_acc"][k]),
            "test_loss": value(final["test_loss"][k]),
            "val_acc": value(curves[k]["val_acc"][-1]) if curves[k]["val_acc"] else float("nan"),
            "val_loss": value(val_loss[k]) if cfg.epochs else float("nan"),  # final epoch's
            "train_acc": value(final["train_acc"][k]),
            "train_loss": value(final["train_loss"][k]),
            "steps": float(step),
            "theta0_val_acc": float(at_b[0][k]),
            "theta0_test_acc": float(at_b[1][k]),
            **{key: value(acc[k]) for key, acc in final.items() if ".bits" in key},
        })
    return status, reasons, metrics


@torch.no_grad()
def _park(thetas: list[list[Tensor]], groups: list[Group], alive: Tensor) -> None:
    """Hold stopped members at θ = 0 (their offset), so non-finite values never spread or cost time."""
    start = 0
    for ts, g in zip(thetas, groups):
        for t, (members, _) in zip(ts, g.blocks()):
            dead = ~alive[start + members.start : start + members.stop]
            if bool(dead.any()):
                t[dead] = 0.0
        start += g.subspace.K


def _divergence_reason(losses: list[float]) -> str:
    epoch = next((i for i, v in enumerate(losses) if not math.isfinite(v)), len(losses) - 1)
    return f"training loss became non-finite in epoch {epoch + 1} (diverged; try a smaller lr)"
