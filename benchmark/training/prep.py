"""Shared preparation, computed once per seed and used by every method and ratio that needs it.

    w0                 the initialization (seeded per (seed, "init"))
    full-space run     from w0 for the configured epochs, all seeds batched; gives
        w_t            the weights after burn_in_steps steps
        trajectory     snapshots w_k - w0 every trajectory.every steps -> principal directions
        dense weights  round 1 of IMP
    independent run    the same recipe from the same w0 with another data order (batched with the
                       full-space run): a second trajectory whose endpoint is not the reference's
    own masks          each directions kind that chooses masks (IMP, saliency scores) prepares them
                       (benchmark.methods: Directions.prepare), given the dense weights of the full run
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor

from benchmark.core.seeds import derive_seed
from benchmark.data.splits import Splits
from benchmark.data.tasks import permutations, permuted
from benchmark.training.loop import Group, TrainConfig, steps_per_epoch, train_population
from subspaces import DenseProjection, FlatModel, IdentityProjection, Subspace, principal_directions
from subspaces.random import DENSE_BUDGET_BYTES
from subspaces.trajectory import CompletedBasisProjection, completed_basis

# The preparation's own stages, as `prepare` times them (timings[key] in seconds) and as reports name
# them; a directions kind that prepares its masks adds "<kind>_s" (see PrepContext.stage).
STAGES = {"pretrain_s": "pretraining", "full_run_s": "full run", "trajectory_s": "trajectory"}


@dataclass
class Preparation:
    """What one seed's members share. Tensors are on the training device.

    Every field but `model` is cached (benchmark.runner.prep_cache writes and validates them generically): the
    base (everything but masks and rounds) in one file, each kind's masks and rounds in its own."""

    seed: int
    w0: Tensor  # (D,)
    wt: Tensor | None = None  # (D,), w after burn_in_steps full-space steps
    wp: Tensor | None = None  # (D,), w0 trained in full space on the pretraining task (pretrain)
    burn_in_steps: int = 0
    full_steps: int = 0  # length of the full-space run, in optimizer steps
    basis: Tensor | None = None  # (D, r) orthonormal: the trajectory's principal directions, r <= basis_dim
    rank: int = 0  # r, how many principal directions the trajectory has (up to basis_dim)
    indep_basis: Tensor | None = None  # (D, r) the same, from the independent run's trajectory
    indep_rank: int = 0
    basis_dim: int = 0  # the largest d the basis was asked to serve
    complete: bool = True  # a lottery subspace of d > r adds d − r random orthonormal directions
    dense: Tensor | None = None  # (D,) the full-space run's final weights (IMP's dense round)
    # Written by the directions kinds that prepare their own masks (Directions.prepare), each cached as a part:
    # "<kind>.<anchor>" -> d -> kept coordinates (d,), sorted: tickets, saliency masks
    masks: dict[str, dict[int, Tensor]] = field(default_factory=dict)
    rounds: dict[str, dict[int, int]] = field(default_factory=dict)  # kind -> d -> training runs it spent
    model: FlatModel | None = field(default=None, compare=False, repr=False)  # what w means (not cached)
    _rows: dict = field(default_factory=dict, init=False, repr=False, compare=False)  # which (or which, d) -> rows
    _completed: dict[str, CompletedBasisProjection] = field(default_factory=dict, init=False, repr=False,
                                                            compare=False)

    def trajectory(self, which: str) -> tuple[Tensor | None, int]:
        """(basis (D, r) or None, rank) of the "reference" or the "independent" trajectory."""
        return (self.basis, self.rank) if which == "reference" else (self.indep_basis, self.indep_rank)

    def basis_rows(self, which: str = "reference") -> Tensor:
        """A basis as rows (r, D), contiguous, made once: every lottery subspace of this seed is a view of it."""
        if which not in self._rows:
            self._rows[which] = self.trajectory(which)[0].T.contiguous()
        return self._rows[which]

    def completed(self, which: str, d: int) -> CompletedBasisProjection | DenseProjection:
        """The lottery subspace of dimension d > r of a trajectory: its r principal directions, then d − r
        random orthonormal ones orthogonal to them, the same A whichever way it is applied:

        implicit (CompletedBasisProjection, O(D r) memory), or, where that is cheaper and small, its rows
        materialized: a product then reads d rows once instead of the r-row factor twice, so for
        d <= 2 r within the stored-directions budget. Either is made once per trajectory (and d), so the
        candidates of this seed share it."""
        if which not in self._completed:
            basis = self.trajectory(which)[0]
            self._completed[which] = completed_basis(basis, basis.shape[1] or 1, completion_seed(self.seed, which))
        implicit = dataclasses.replace(self._completed[which], dim=d)
        if d > 2 * implicit.r or implicit.D * d * 4 > DENSE_BUDGET_BYTES:
            return implicit
        if (which, d) not in self._rows:
            self._rows[which, d] = torch.cat([self.basis_rows(which), implicit.completion_rows()])
        return DenseProjection(self._rows[which, d][None])

    def anchor(self, name: str) -> Tensor:
        """w0, w_t or w_p (D,), by the names of Method.anchor."""
        return {"w0": self.w0, "wt": self.wt, "wp": self.wp}[name]


@dataclass
class PrepContext:
    """What a directions kind's own preparation (Directions.prepare) may read, for all seeds at once."""

    seeds: list[int]
    preps: dict[int, Preparation]  # written: preps[s].masks[...]
    flat: FlatModel
    data: Splits
    train_cfg: TrainConfig  # the reference's recipe
    dense: Tensor | None  # (S, D) the full-space run's final weights, seed order (None: not run)
    prunable: Tensor | None  # (D,) bool, coordinates a pruning method may remove (None: all)
    layers: list[slice] | None  # IMP's per-layer scope (None: global ranking)
    imp_fraction: float
    say: Callable[[str], None]

    def keepable(self, dims: list[int]) -> list[int]:
        """The d a mask can have: at least the coordinates `prunable` always keeps (the others' members
        FAIL with the preparation's reason, see methods.prepared_mask)."""
        fixed = 0 if self.prunable is None else int((~self.prunable).sum())
        return [d for d in dims if d >= fixed]


def data_seed(seed: int) -> int:
    """All members of one seed see the same data order (a confounder held fixed across methods)."""
    return derive_seed(seed, "data_order")


def independent_data_seed(seed: int) -> int:
    """The data order of the independent run: not the one any member of this seed trains with."""
    return derive_seed(seed, "independent_data_order")


def init_weights(make_module: Callable[[], torch.nn.Module], seed: int) -> Tensor:
    """w0 (D,) for a seed: the module's own initializer, under a derived seed, not touching global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "init") % (2**63))
        module = make_module()
    return FlatModel.of(module).flatten()


# Where a member's offset comes from (Method.anchor), in the order tables show them.
ANCHORS = ("w0", "wt", "wp")

# What the base of a preparation can hold (any other entry of `needs` names a kind's own masks).
BASE_NEEDS = {"wt", "wp", "full_run", "indep_run", "imp"}

# A directions kind's own preparation: (Directions.prepare, the d it must serve, the anchors).
OwnPreparation = tuple[Callable[[PrepContext, list[int], tuple[str, ...]], None], list[int], tuple[str, ...]]


def prepare(
    seeds: list[int],
    w0: Tensor,
    flat: FlatModel,
    data: Splits,
    train_cfg: TrainConfig,
    needs: set[str],
    own: dict[str, OwnPreparation],
    burn_in_steps: int,
    trajectory_every: int = 1,
    trajectory_centered: bool = False,
    trajectory_complete: bool = True,
    basis_dim: int = 0,
    imp_fraction: float = 0.2,
    imp_prunable: Tensor | None = None,
    imp_layers: list[slice] | None = None,
    on_progress: Callable[[str], None] | None = None,
    timings: dict[str, float] | None = None,
) -> dict[int, Preparation]:
    """Preparation for every seed at once: its base (prepare_base), then every kind's own masks
    (prepare_masks). w0: (S, D) in seed order. needs ⊆ {"wt", "full_run", "indep_run", "imp"} plus the
    kinds in `own`, each {kind: (prepare hook, dims, anchors)} (see OwnPreparation).

    timings, if given, receives the wall seconds of each stage: full_run_s, trajectory_s, <kind>_s."""
    timings = {} if timings is None else timings
    preps = prepare_base(seeds, w0, flat, data, train_cfg, needs, burn_in_steps, trajectory_every,
                         trajectory_centered, trajectory_complete, basis_dim, on_progress, timings)
    prepare_masks(preps, flat, data, train_cfg, own, imp_fraction, imp_prunable, imp_layers, on_progress, timings)
    return preps


def prepare_base(seeds, w0, flat, data, train_cfg, needs, burn_in_steps, trajectory_every=1, trajectory_centered=False,
                 trajectory_complete=True, basis_dim=0, on_progress=None, timings=None) -> dict[int, Preparation]:
    """w0, and where `needs` asks for them the full-space run (w_t, its final weights) and the trajectory
    bases, for every seed at once (one population)."""
    S, D = w0.shape
    full_steps = train_cfg.epochs * steps_per_epoch(len(data.y_train), train_cfg.batch_size)
    preps = {s: Preparation(seed=s, w0=w0[i], burn_in_steps=burn_in_steps, full_steps=full_steps,
                            basis_dim=basis_dim, complete=trajectory_complete, model=flat) for i, s in enumerate(seeds)}
    if "wp" in needs:
        lap = _lap(timings)
        pretrain(seeds, w0, flat, data, train_cfg, preps, on_progress or (lambda msg: None))
        lap("pretrain_s")
    if not needs & (BASE_NEEDS - {"wp"}):
        return preps
    if "wt" in needs and burn_in_steps > full_steps:
        raise ValueError(f"burn_in_steps={burn_in_steps} exceeds the full-space run ({full_steps} steps)")
    dense = _full_run(seeds, w0, flat, data, train_cfg, needs, preps, burn_in_steps, trajectory_every,
                      trajectory_centered, basis_dim, on_progress or (lambda msg: None),
                      _lap(timings))
    for i, s in enumerate(seeds):
        preps[s].dense = dense[i]
    return preps


def prepare_masks(preps: dict[int, Preparation], flat, data, train_cfg, own: dict[str, OwnPreparation],
                  imp_fraction=0.2, imp_prunable=None, imp_layers=None, on_progress=None, timings=None) -> None:
    """Each kind's own masks (own: {kind: (hook, dims, anchors)}) for every seed of `preps` at once,
    written into preps; a kind reads the base (w0, w_t, the full run's final weights)."""
    seeds = list(preps)
    dense = None
    if all(preps[s].dense is not None for s in seeds):
        dense = torch.stack([preps[s].dense for s in seeds])
    ctx = PrepContext(seeds, preps, flat, data, train_cfg, dense, imp_prunable, imp_layers, imp_fraction,
                      on_progress or (lambda msg: None))
    lap = _lap(timings)
    for kind, (hook, dims, anchors) in own.items():
        if dims:
            hook(ctx, dims, anchors)
        lap(f"{kind}_s")


def _lap(timings: dict[str, float] | None) -> Callable[[str], None]:
    """lap(name) adds the seconds since the previous lap (or since now) to timings[name]."""
    timings = {} if timings is None else timings
    clock = [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        timings[name] = timings.get(name, 0.0) + now - clock[0]
        clock[0] = now
    return lap


def _full_run(seeds, w0, flat, data, train_cfg, needs, preps, burn_in_steps, trajectory_every, trajectory_centered,
              basis_dim, say, lap) -> Tensor:
    """The full-space run (and the independent one): sets w_t and the trajectory bases on `preps`;
    returns the final weights (S, D) of the reference's runs (IMP's dense round)."""
    S, D = w0.shape
    full_steps = preps[seeds[0]].full_steps
    record_trajectory = bool(needs & {"full_run", "indep_run"}) and basis_dim > 0
    indep = "indep_run" in needs
    # Rows 0..S-1: the full-space run (the reference's recipe and data order); then, if asked for, the
    # independent runs from the same w0 with another data order, trained alongside in one population.
    starts = torch.cat([w0, w0]) if indep else w0
    orders = tuple(map(data_seed, seeds)) + (tuple(map(independent_data_seed, seeds)) if indep else ())
    snapshots: list[Tensor] = []
    wt = w0.clone() if burn_in_steps == 0 else None

    def on_step(step: int, weights: Callable[[], Tensor]) -> None:
        nonlocal wt
        if step == burn_in_steps:
            wt = weights()[:S].clone()
        if record_trajectory and step % trajectory_every == 0:
            snapshots.append((weights() - starts).cpu())

    say(f"full-space run: {S} seed(s) x {full_steps} steps" + (", with an independent run each" if indep else ""))
    dense = train_population(
        flat, [Group(Subspace(starts.clone(), IdentityProjection(len(starts), D)), train_cfg.lr, orders)],
        data, train_cfg, on_step=on_step,
    )
    if wt is not None:  # None: burn_in_steps is past the run's end and no requested method uses w_t
        for i, s in enumerate(seeds):
            preps[s].wt = wt[i]
    lap("full_run_s")
    if record_trajectory:
        traj = torch.stack(snapshots, dim=1)  # (S or 2S, T, D)
        for i, s in enumerate(seeds):
            for row, which in ((i, "reference"), (S + i, "independent")):
                if row >= len(traj) or (which == "reference" and "full_run" not in needs):
                    continue
                basis = principal_directions(traj[row].to(w0.device), basis_dim, trajectory_centered)
                rank = basis.shape[1]
                if which == "reference":
                    preps[s].basis, preps[s].rank = basis, rank
                else:
                    preps[s].indep_basis, preps[s].indep_rank = basis, rank
        del traj, snapshots
    lap("trajectory_s")
    return dense.weights[:S]


def pretrain(seeds, w0, flat, data, train_cfg, preps, say) -> None:
    """w_p for every seed: its w0 trained in full space, with the reference's recipe, on the pretraining
    task — the same inputs with their positions under one fixed random permutation (benchmark.data.tasks'
    task 1): another task on the same input space, as a network pretrained elsewhere would be."""
    S, D = w0.shape
    perm = permutations(math.prod(data.input_shape), 2, PRETRAINING_TASK_SEED)[1]
    say(f"pretraining: {S} seed(s) x {train_cfg.epochs} epochs on the permuted task")
    r = train_population(flat, [Group(Subspace(w0.clone(), IdentityProjection(S, D)), train_cfg.lr,
                                      tuple(derive_seed(s, "pretraining_data") for s in seeds))],
                         permuted(data, perm.to(w0.device)), train_cfg)
    for i, s in enumerate(seeds):
        preps[s].wp = r.weights[i]


PRETRAINING_TASK_SEED = 0  # the pretraining task is one fixed permutation, the same for every seed


def completion_seed(seed: int, which: str) -> int:
    """Seed of the random directions that complete a trajectory's basis (the reference's as before)."""
    return derive_seed(seed, "basis_completion") if which == "reference" else derive_seed(seed, "basis_completion", which)
