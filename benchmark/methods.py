"""The methods, as in Larsen et al. (ICLR'22, Table 1), plus one control: how each chooses A and b.

A method is a row of that table: a family, where the offset comes from (w0 or w_t), and how the
directions are chosen. Building one member's subspace is a pure function of the shared preparation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from baselines import random_coordinates
from benchmark.prep import Preparation
from benchmark.seeds import derive_seed
from subspaces import CoordinateProjection, DenseProjection, IdentityProjection, Subspace, random_projection


class MemberError(Exception):
    """This member cannot be built (the reason is recorded on its FAILED run); the others go on."""


@dataclass(frozen=True)
class Method:
    family: str  # "full", "pruning" (axis-aligned) or "general"
    anchor: str  # offset from "w0" (initialization) or "wt" (after burn_in_steps full-space steps)
    directions: str  # key of DIRECTIONS

    @property
    def needs(self) -> set[str]:
        """Which shared preparation this method uses."""
        out = {"wt"} if self.anchor == "wt" else set()
        return out | {"ticket": {"imp", "full_run"}, "trajectory": {"full_run"},
                      "independent_trajectory": {"indep_run"}}.get(self.directions, set())


METHODS: dict[str, Method] = {
    "full": Method("full", "w0", "identity"),
    "random_pruning": Method("pruning", "w0", "random_coordinates"),
    "random_pruning_t": Method("pruning", "wt", "random_coordinates"),
    "lottery_ticket": Method("pruning", "w0", "ticket"),
    "lottery_ticket_t": Method("pruning", "wt", "ticket"),
    "random_affine": Method("general", "w0", "random_projection"),
    "burn_in_affine": Method("general", "wt", "random_projection"),
    "lottery_subspace": Method("general", "w0", "trajectory"),
    "lottery_subspace_t": Method("general", "wt", "trajectory"),
    # The control for lottery subspaces: a trajectory from the same w0 under another data order, so
    # the subspace does not contain the reference's own endpoint (see Preparation.indep_basis).
    "lottery_subspace_indep": Method("general", "w0", "independent_trajectory"),
}


# Directions read from a stored trajectory basis: which of the preparation's trajectories.
TRAJECTORIES = {"trajectory": "reference", "independent_trajectory": "independent"}


def _coordinates(prep: Preparation, index: torch.Tensor, anchor: torch.Tensor) -> Subspace:
    """Axis-aligned: b = anchor on kept coordinates and 0 elsewhere (pruned weights are exactly 0)."""
    D = anchor.numel()
    offset = torch.zeros(1, D, dtype=anchor.dtype, device=anchor.device)
    offset[0, index] = anchor[index]
    return Subspace(offset, CoordinateProjection(index[None].to(anchor.device), D))


def _identity(prep, method, d, anchor, projection) -> Subspace:
    return Subspace(anchor[None].clone(), IdentityProjection(1, anchor.numel()))


def _random_coordinates(prep, method, d, anchor, projection) -> Subspace:
    # Seeded by (seed, d) only: random_pruning and random_pruning_t keep the same coordinates,
    # so the two differ by their offset alone.
    index = random_coordinates(anchor.numel(), d, derive_seed(prep.seed, "random_coordinates", d))
    return _coordinates(prep, index, anchor)


def _ticket(prep, method, d, anchor, projection) -> Subspace:
    return _coordinates(prep, prep.tickets[METHODS[method].anchor][d], anchor)


def _random_projection(prep, method, d, anchor, projection) -> Subspace:
    # Shared by random_affine and burn_in_affine at the same (seed, d): they differ by offset alone.
    seed = derive_seed(prep.seed, "random_projection", d)
    return Subspace(anchor[None].clone(), random_projection(projection, anchor.numel(), d, seed).to(anchor.device))


def _trajectory(prep, method, d, anchor, projection, which: str = "reference") -> Subspace:
    basis, rank = prep.trajectory(which)
    have = 0 if basis is None else basis.shape[1]
    if have < d:
        if d > prep.basis_dim:
            raise MemberError(f"a lottery subspace of d = {d} needs a stored {anchor.numel():,} x {d:,} basis, "
                              f"over the preparation's memory budget; use fewer dimensions (a larger ratio)")
        raise MemberError(
            f"the trajectory spans only {rank} directions but d = {d}; record more snapshots "
            f"(more epochs or a smaller trajectory.every) or set trajectory.complete=true"
        )
    # A prefix of the basis as rows (d, D): the same storage for every member of this seed and d, so a
    # population's candidates (learning rates, anchors) share one matrix (DenseProjection.stack).
    rows = prep.basis_rows(which)[:d]
    return Subspace(anchor[None].clone(), DenseProjection(rows[None], columns=basis[:, :d][None]))


def _independent_trajectory(prep, method, d, anchor, projection) -> Subspace:
    return _trajectory(prep, method, d, anchor, projection, which="independent")


def principal_dims(method: str, prep: Preparation, d: int) -> int | None:
    """How many of a lottery subspace's d directions are principal directions of its trajectory (the
    rest are random completion); None for methods without a trajectory basis."""
    which = TRAJECTORIES.get(METHODS[method].directions)
    return None if which is None else min(d, prep.trajectory(which)[1])


DIRECTIONS: dict[str, Callable[..., Subspace]] = {
    "identity": _identity,
    "random_coordinates": _random_coordinates,
    "ticket": _ticket,
    "random_projection": _random_projection,
    "trajectory": _trajectory,
    "independent_trajectory": _independent_trajectory,
}


def build_subspace(method: str, prep: Preparation, d: int, projection: str = "auto") -> Subspace:
    """One member's subspace (K = 1) for `method` at dimension d from its seed's preparation."""
    m = METHODS[method]
    anchor = prep.w0 if m.anchor == "w0" else prep.wt
    return DIRECTIONS[m.directions](prep, method, d, anchor, projection)


def prep_steps(method: str, prep: Preparation, d: int) -> int:
    """Full-space training steps the method spent before its own training began."""
    m = METHODS[method]
    steps = prep.burn_in_steps if m.anchor == "wt" else 0
    if m.directions in TRAJECTORIES:
        steps = max(steps, prep.full_steps)
    if m.directions == "ticket":
        # Round 1 is the dense run (which also yields w_t); each later round retrains from the rewind point.
        steps = max(steps, prep.ticket_rounds[d] * prep.full_steps)
    return steps
