"""The grid runner: methods x ratios x seeds, all at exactly matched d = round(D / r)."""
from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch

from benchmark.config.build import RunConfig, dim_for_ratio
from benchmark.core.errors import UserError
from benchmark.data.registry import selection_metric
from benchmark.data.splits import Splits
from benchmark.methods import (
    DIRECTIONS,
    METHODS,
    MemberError,
    build_subspace,
    description_bits,
    lr_scale,
    prep_steps,
    preparing,
    principal_dims,
)
from benchmark.runner.memory import activation_floats, default_memory_budget, evaluation_batch, tensor_bytes, training_bytes
from benchmark.training.loop import Group, PopulationResult, train_population
from benchmark.training.prep import Preparation, data_seed
from subspaces import FlatModel, Subspace, stack


@dataclass(frozen=True)
class Cell:
    """One member of the grid: a (method, ratio, seed), its d, and one candidate learning rate."""

    method: str
    ratio: float
    d: int
    seed: int
    lr: float

    @property
    def name(self) -> str:
        return f"{self.method}-r{self.ratio:g}-s{self.seed}-lr{self.lr:g}"


@dataclass
class MemberOutcome:
    cell: Cell
    status: str  # FINISHED | FAILED
    reason: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    curves: dict[str, list[float]] = field(default_factory=dict)


def plan(cfg: RunConfig, D: int, model=None) -> list[Cell]:
    """Every (method, ratio, seed, candidate lr). `full` is the d = D reference and runs at ratio 1 only;
    every other method runs at each ratio > 1 (ratio 1 would make it the full network again).
    Every (method, ratio) gets the same number of candidate learning rates (`lr_candidates` on `model`,
    the FlatModel)."""
    cells = []
    for r in cfg.ratios:
        d = dim_for_ratio(D, r)
        if r > 1 and not 1 <= d < D:
            raise UserError(
                f"ratio {r:g} gives d = {d} for this model (D = {D}); accepted ratios give 1 <= d < D, "
                f"i.e. 1 < ratio <= {2 * D - 1}"
            )
    for seed in cfg.seeds:
        for m in cfg.methods:
            ratios = [1.0] if m == "full" else [r for r in cfg.ratios if r > 1]
            cells += [Cell(m, r, dim_for_ratio(D, r), seed, lr) for r in ratios for lr in lr_candidates(cfg, m, model)]
    return cells


def optimizer_of(cfg: RunConfig, method: str) -> str:
    """The optimizer of a method's θ: subspace_optimizer for general subspaces, else the config's."""
    return cfg.subspace_optimizer if METHODS[method].family == "general" else cfg.train.optimizer


def lr_candidates(cfg: RunConfig, method: str, model=None) -> tuple[float, ...]:
    """The candidate learning rates of a method: its family's centre (times the method's own scale on
    `model`, methods.lr_scale) times each factor of lr_grid.

    θ of a general subspace moves unit-norm directions spread over all D, so its grid is centred on
    subspace_lr, a larger step than a coordinate's (Larsen et al. use 5e-2 there, vs 1e-3 full-space).
    Rounded to 6 significant digits so that 0.3 x 1e-2 is logged as 0.003."""
    centre = (cfg.subspace_lr if METHODS[method].family == "general" else cfg.train.lr) * lr_scale(method, model)
    return tuple(float(f"{centre * f:.6g}") for f in cfg.lr_grid)


def preparation_plan(cfg: RunConfig, cells: list[Cell], D: int, reference_lr: float | None) -> dict:
    """What the shared preparation of this invocation depends on, decided before it is computed:
    the reference's recipe (train config with the lr chosen on validation for `full`), which parts
    are needed, every d and anchor of the masks a directions kind prepares (the IMP schedule's targets
    and rewind points, the saliency masks), the basis size.

    It keys the preparation cache and enters the config_hash of every member that uses it."""
    needs = set().union(*(METHODS[m].needs for m in cfg.methods))
    wanted = [c.d for c in cells if DIRECTIONS[METHODS[c.method].directions].trajectory]
    masks = {kind: {"dims": sorted({c.d for c in cells if METHODS[c.method].directions == kind}),
                    "anchors": list(anchors)} for kind, anchors in sorted(preparing(cfg.methods).items())}
    return {
        "dataset": cfg.dataset, "model": cfg.model, "burn_in": cfg.burn_in_steps,
        "train": {**asdict(cfg.train), "lr": cfg.train.lr if reference_lr is None else reference_lr},
        "trajectory": asdict(cfg.trajectory), "imp": asdict(cfg.imp), "needs": sorted(needs),
        "masks": masks,
        # How many principal directions a trajectory is asked for (it may span fewer): the largest d.
        "basis": max(wanted, default=0),
    }


def member_params(cfg: RunConfig, c: Cell, D: int, prep_plan: dict | None) -> dict:
    m = METHODS[c.method]
    params = {
        "method": c.method, "family": m.family, "anchor": m.anchor,
        "dataset": cfg.dataset["name"], "model": cfg.model["name"],
        "D": D, "d": c.d, "ratio": c.ratio, "seed": c.seed,
        "burn_in_steps": cfg.burn_in_steps, "projection": cfg.projection if m.family == "general" else "n/a",
        "optimizer": optimizer_of(cfg, c.method), "lr": c.lr, "lr_grid": cfg.lr_grid_text,
        "epochs": cfg.train.epochs, "batch_size": cfg.train.batch_size, "weight_decay": cfg.train.weight_decay,
        "select_on": selection_metric(cfg.dataset["name"]),  # not in the hash: it does not change training
        "config_hash": member_hash(cfg, c, prep_plan),
    }
    if m.needs and prep_plan is not None:  # its preparation followed the reference's selected recipe
        params["reference_lr"] = prep_plan["train"]["lr"]
    return params


def outcome_record(o: MemberOutcome, D: int, num_classes: int, run_id: str | None = None) -> dict:
    """One member as the leaderboard reads it (the same keys a logged child run gives)."""
    m = METHODS[o.cell.method]
    return dict(method=o.cell.method, family=m.family, anchor=m.anchor, ratio=o.cell.ratio, d=o.cell.d, D=D,
                seed=o.cell.seed, lr=o.cell.lr, status=o.status, num_classes=num_classes, run_id=run_id,
                failure_reason=o.reason, **o.metrics)


def member_hash(cfg: RunConfig, cell: Cell, prep_plan: dict | None = None) -> str:
    """config_hash of one member: the config, its cell, and the part of the preparation plan its method
    uses (the reference lr; for masks of a joint schedule (IMP) every d and anchor of its kind, for
    lottery subspaces the basis size).
    Members of methods that need no preparation (random affine, random pruning) do not depend on it."""
    m = METHODS[cell.method]
    part = None
    if m.needs and prep_plan is not None:
        part = {"reference_lr": prep_plan["train"]["lr"]}
        if DIRECTIONS[m.directions].joint:
            part.update(masks=prep_plan["masks"][m.directions])
        if DIRECTIONS[m.directions].trajectory:
            part.update(basis=prep_plan["basis"])
    return cfg.hash(cell.method, cell.ratio, cell.seed, cell.lr, part)


def train_cells(
    cfg: RunConfig,
    cells: list[Cell],
    preps: dict[int, Preparation],
    flat: FlatModel,
    data: Splits,
    on_done: Callable[[list[MemberOutcome]], None],
    on_epoch: Callable[[int, int], None] | None = None,
    memory_budget: int | None = None,
    on_start: Callable[[list[Cell]], None] | None = None,
) -> list[MemberOutcome]:
    """Build every member's subspace and train them: as populations that fill the memory budget
    (cfg.population) or one member at a time.

    Subspaces are built as their population fills, so what is held at once stays within the budget.
    on_start receives a population's cells before it trains; on_done its outcomes as soon as it
    finishes (so they are logged early); on_epoch(epoch, members) reports progress in member-epochs.
    """
    device = flat.flatten().device
    budget = memory_budget or (
        cfg.memory_budget_mb * 2**20 if cfg.memory_budget_mb else default_memory_budget(device))
    per_example = activation_floats(flat, data)
    outcomes: list[MemberOutcome] = []
    pending: list[tuple[Cell, Subspace]] = []
    used = 0
    storages: set = set()  # storages counted in `used` (shared ones are held once)

    def flush():
        nonlocal pending, used
        storages.clear()
        if pending:
            if on_start:
                on_start([c for c, _ in pending])
            eval_batch = evaluation_batch(len(pending), per_example, budget, used, cfg.train.batch_size,
                                          cfg.train.eval_batch_size)
            done = _train_population(cfg, pending, preps, flat, data, on_epoch, eval_batch)
            outcomes.extend(done)
            on_done(done)
        pending, used = [], 0

    for cell in cells:
        try:
            sub = build_subspace(cell.method, preps[cell.seed], cell.d, cfg.projection)
        except MemberError as e:
            failed = MemberOutcome(cell, "FAILED", str(e))
            outcomes.append(failed)
            on_done([failed])
            continue
        fresh = set(storages)
        need = tensor_bytes(sub, fresh) + training_bytes(flat, sub.d, cfg.train.batch_size, per_example)
        if pending and (not cfg.population or used + need > budget):
            flush()
            fresh = set()
            need = tensor_bytes(sub, fresh) + training_bytes(flat, sub.d, cfg.train.batch_size, per_example)
        pending.append((cell, sub))
        storages.update(fresh)
        used += need
    flush()
    return outcomes


def never_pruned(cfg: RunConfig, flat) -> int:
    """Coordinates no pruning mask removes: the biases (1-d tensors) under imp.prunable=weights, else none."""
    if cfg.imp.prunable != "weights":
        return 0
    return sum(sl.stop - sl.start for sl, shape in zip(flat.slices, flat.shapes) if len(shape) <= 1)


def _train_population(cfg, members, preps, flat, data, on_epoch, eval_batch: int) -> list[MemberOutcome]:
    """One population: members of one kind and one d share a batched kernel call (whatever their lr:
    the candidates of a lottery subspace then read their shared basis once per step). eval_batch:
    examples per evaluation forward (memory.evaluation_batch), so that evaluation fits the budget too."""
    grouped: dict[tuple, list[tuple[Cell, Subspace]]] = defaultdict(list)
    for cell, sub in members:
        grouped[(sub.batch_key, optimizer_of(cfg, cell.method))].append((cell, sub))
    groups, order = [], []
    for (_, optimizer), ms in grouped.items():
        ms = sorted(ms, key=lambda m: m[0].lr)  # stable: equal lrs are one optimizer param group
        groups.append(Group(stack([s for _, s in ms]), tuple(c.lr for c, _ in ms),
                            tuple(data_seed(c.seed) for c, _ in ms), optimizer))
        order += [(c, s) for c, s in ms]
    K = len(order)
    train = dataclasses.replace(cfg.train, eval_batch_size=eval_batch)
    result = train_population(flat, groups, data, train,
                              on_epoch=(lambda e: on_epoch(e, K)) if on_epoch else None, quantize_bits=cfg.quantize_bits)
    fixed = never_pruned(cfg, flat)
    return [_outcome(c, k, result, preps, K, layer_metrics(flat, sub, result.weights[k]), fixed, cfg.quantize_bits)
            for k, (c, sub) in enumerate(order)]


def layer_metrics(flat: FlatModel, sub: Subspace, w: torch.Tensor) -> dict[str, float]:
    """Where a member spends its d, per parameter tensor of the model: layer_shift.<name>, its share of
    ‖w − b‖² = ‖Aθ‖², the displacement training made inside the subspace (w: the trained weights (D,),
    b: the member's offset); for an axis-aligned member also layer_density.<name>, the fraction of the
    tensor's coordinates it trains."""
    shift = (w.detach().double() - sub.offset[0].double()) ** 2
    total = float(shift.sum())
    # A member that did not move (e.g. a mask that cut every path, so every gradient is 0) has no shares.
    out = {f"layer_shift.{n}": float(shift[sl].sum()) / total for n, sl in zip(flat.names, flat.slices)} if total else {}
    if sub.kind == "coordinates":
        index = sub.projection.index[0]
        for n, sl in zip(flat.names, flat.slices):
            out[f"layer_density.{n}"] = int(((index >= sl.start) & (index < sl.stop)).sum()) / (sl.stop - sl.start)
    return out


def _outcome(cell: Cell, k: int, result: PopulationResult, preps, K: int, layers: dict[str, float],
             fixed: int = 0, cfg_bits: tuple[int, ...] = ()) -> MemberOutcome:
    metrics = dict(result.metrics[k])
    # In a population, wall time is shared: each member is charged its share.
    metrics["wall_time_s"] = result.wall_time_s / K
    metrics["prep_steps"] = float(prep_steps(cell.method, preps[cell.seed], cell.d))
    r = principal_dims(cell.method, preps[cell.seed], cell.d)
    if r is not None:  # a lottery basis: r principal directions, d - r random ones (labelled in tables)
        metrics["principal_dims"] = float(r)
    if result.status[k] == "FINISHED":  # a FAILED member describes no trained network: no layers, no bits
        metrics.update(layers)
        for b in (32,) + cfg_bits:  # unquantized, then at each quantized width
            bits = description_bits(cell.method, preps[cell.seed], cell.d, fixed, theta_bits=b)
            metrics.update({f"description_bits.{code}" + ("" if b == 32 else f".bits{b}"): v for code, v in bits.items()})
    return MemberOutcome(cell, result.status[k], result.reasons[k], metrics, result.curves[k])
