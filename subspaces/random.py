"""Random general subspaces by kernel name: the names users type for `projection=`."""
from __future__ import annotations

from typing import Callable

from subspaces.core import Projection
from subspaces.dense import DenseProjection, gaussian_directions, gaussian_on_the_fly
from subspaces.fastfood import fastfood
from subspaces.sparse import sparse_random

# Stored dense directions up to this size per member; beyond it they are regenerated on the fly.
DENSE_BUDGET_BYTES = 256 * 2**20


def dense(D: int, d: int, seed: int, budget_bytes: int = DENSE_BUDGET_BYTES) -> Projection:
    if D * d * 4 <= budget_bytes:
        return DenseProjection(gaussian_directions(D, d, seed)[None])
    return gaussian_on_the_fly(D, d, seed)


RANDOM_PROJECTIONS: dict[str, Callable[..., Projection]] = {
    "dense": dense,
    "sparse": sparse_random,
    "fastfood": fastfood,
}

# `auto`: dense streams D d floats per product, Fastfood does O(D log L) work whatever d is. Below
# this d the dense matrix is cheaper (measured with `python -m benchmark bench`, see README).
AUTO_DENSE_MAX_D = 32


def auto_kind(D: int, d: int) -> str:
    return "dense" if d <= AUTO_DENSE_MAX_D else "fastfood"


def random_projection(kind: str, D: int, d: int, seed: int) -> Projection:
    """One member's (K = 1) random projection with d unit-norm columns over D."""
    if kind == "auto":
        kind = auto_kind(D, d)
    if kind not in RANDOM_PROJECTIONS:
        raise ValueError(f"unknown projection {kind!r}; accepted: auto, {', '.join(RANDOM_PROJECTIONS)}")
    return RANDOM_PROJECTIONS[kind](D, d, seed)
