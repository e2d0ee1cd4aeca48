"""The grid runner: methods x ratios x seeds, all at exactly matched d = round(D / r)."""
from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor

from benchmark.config import RunConfig, dim_for_ratio
from benchmark.data import Splits
from benchmark.errors import UserError
from benchmark.flat import FlatModel
from benchmark.methods import METHODS, MemberError, build_subspace, prep_steps
from benchmark.prep import Preparation, data_seed
from benchmark.train import Group, PopulationResult, train_population
from subspaces import stack


@dataclass(frozen=True)
class Cell:
    """One member of the grid: a (method, ratio, seed) and its d."""

    method: str
    ratio: float
    d: int
    seed: int

    @property
    def name(self) -> str:
        return f"{self.method}-r{self.ratio:g}-s{self.seed}"


@dataclass
class MemberOutcome:
    cell: Cell
    status: str  # FINISHED | FAILED
    reason: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    curves: dict[str, list[float]] = field(default_factory=dict)


def plan(cfg: RunConfig, D: int) -> list[Cell]:
    """Every (method, ratio, seed). `full` is the d = D reference and runs at ratio 1 only;
    every other method runs at each ratio > 1 (ratio 1 would make it the full network again)."""
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
            if m == "full":
                cells.append(Cell(m, 1.0, D, seed))
            else:
                cells += [Cell(m, r, dim_for_ratio(D, r), seed) for r in cfg.ratios if r > 1]
    return cells


def lr_for(cfg: RunConfig, method: str) -> float:
    """Learning rate per family: θ of a general subspace moves unit-norm directions spread over all D,
    so it takes a larger step than a coordinate (Larsen et al. use 5e-2 there, vs 1e-3 full-space)."""
    return cfg.subspace_lr if METHODS[method].family == "general" else cfg.train.lr


def train_cells(
    cfg: RunConfig,
    cells: list[Cell],
    preps: dict[int, Preparation],
    flat: FlatModel,
    data: Splits,
    on_done: Callable[[list[MemberOutcome]], None],
    on_epoch: Callable[[int, int], None] | None = None,
) -> list[MemberOutcome]:
    """Build every member's subspace and train them, as one population or one at a time.

    on_done receives outcomes as soon as a batch of members finishes (so they are logged early);
    on_epoch(epoch, members) reports progress in member-epochs.
    """
    outcomes: list[MemberOutcome] = []
    buildable: list[tuple[Cell, object]] = []
    for cell in cells:
        try:
            buildable.append((cell, build_subspace(cell.method, preps[cell.seed], cell.d, cfg.projection)))
        except MemberError as e:
            outcomes.append(MemberOutcome(cell, "FAILED", str(e)))
    if outcomes:
        on_done(list(outcomes))

    batches = [buildable] if cfg.population else [[m] for m in buildable]
    for batch in batches:
        if not batch:
            continue
        # Members of one kind and one d share a batched kernel call; each group has one lr.
        grouped: dict[tuple, list[tuple[Cell, object]]] = defaultdict(list)
        for cell, sub in batch:
            grouped[(sub.kind, sub.d, lr_for(cfg, cell.method))].append((cell, sub))
        groups, order = [], []
        for (kind, d, lr), members in grouped.items():
            groups.append(Group(stack([s for _, s in members]), lr, tuple(data_seed(c.seed) for c, _ in members)))
            order += [c for c, _ in members]
        K = len(order)
        result = train_population(
            flat, groups, data, cfg.train,
            on_epoch=(lambda e, K=K: on_epoch(e, K)) if on_epoch else None,
        )
        done = [_outcome(c, k, result, preps, K) for k, c in enumerate(order)]
        outcomes += done
        on_done(done)
    return outcomes


def _outcome(cell: Cell, k: int, result: PopulationResult, preps, K: int) -> MemberOutcome:
    metrics = dict(result.metrics[k])
    # In a population, wall time is shared: each member is charged its share.
    metrics["wall_time_s"] = result.wall_time_s / K
    metrics["prep_steps"] = float(prep_steps(cell.method, preps[cell.seed], cell.d))
    return MemberOutcome(cell, result.status[k], result.reasons[k], metrics, result.curves[k])
