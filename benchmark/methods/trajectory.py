"""Lottery subspaces (Larsen et al. 2022): the top-d principal directions of a training trajectory,
from the reference's own full-space run, or from an independent run (the control)."""
from __future__ import annotations

from benchmark.methods.registry import Directions, MemberError, register
from benchmark.training.description import FLOAT_BITS
from subspaces import DenseProjection, Subspace


def _build(which: str):
    def build(prep, method, d, anchor, projection) -> Subspace:
        basis, rank = prep.trajectory(which)
        if d > rank:
            if not prep.complete:
                raise MemberError(
                    f"the trajectory spans only {rank} directions but d = {d}; record more snapshots "
                    f"(more epochs or a smaller trajectory.every) or set trajectory.complete=true"
                )
            # r principal directions, then d − r random orthonormal ones, never stored as D x d.
            return Subspace(anchor[None].clone(), prep.completed(which, d))
        # A prefix of the basis as rows (d, D): the same storage for every member of this seed and d, so a
        # population's candidates (learning rates, anchors) share one matrix (DenseProjection.stack).
        rows = prep.basis_rows(which)[:d]
        return Subspace(anchor[None].clone(), DenseProjection(rows[None], columns=basis[:, :d][None]))
    return build


def _steps(prep, d: int) -> int:
    return prep.full_steps


def _basis_bits(which: str):
    def bits(prep, d: int, fixed: int) -> float:
        """The trajectory's principal directions it uses, D floats each (the completion is a seeded draw)."""
        return prep.w0.numel() * min(d, prep.trajectory(which)[1]) * FLOAT_BITS
    return bits


register("trajectory", Directions(_build("reference"), frozenset({"full_run"}), steps=_steps, trajectory="reference",
                                  bits=_basis_bits("reference")),
         {"lottery_subspace": ("general", "w0"), "lottery_subspace_t": ("general", "wt")})
# The control for lottery subspaces: a trajectory from the same w0 under another data order, so the
# subspace does not contain the reference's own endpoint (see Preparation.indep_basis).
register("independent_trajectory",
         Directions(_build("independent"), frozenset({"indep_run"}), steps=_steps, trajectory="independent",
                    bits=_basis_bits("independent")),
         {"lottery_subspace_indep": ("general", "w0")})
