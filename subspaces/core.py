"""The one object every method builds: a population of affine subspaces w_k(θ_k) = b_k + A_k θ_k."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor


class Projection(Protocol):
    """A batched linear map A: θ (K, d) -> A θ (K, D), one A per member.

    `kind` names the kernel; projections of the same kind and d can be stacked into one batched call.
    """

    kind: str

    @property
    def K(self) -> int: ...

    @property
    def D(self) -> int: ...

    @property
    def d(self) -> int: ...

    def __call__(self, theta: Tensor) -> Tensor: ...

    def to(self, device: torch.device | str) -> "Projection": ...

    def stack(self, others: list["Projection"]) -> "Projection": ...


@dataclass(frozen=True)
class Subspace:
    """K affine subspaces of one kind: w(θ) = offset + projection(θ).

    offset: (K, D), the weights at θ = 0. projection: θ (K, d) -> (K, D).
    """

    offset: Tensor
    projection: Projection

    def __post_init__(self):
        if self.offset.dim() != 2:
            raise ValueError(f"offset must be (K, D), got shape {tuple(self.offset.shape)}")
        if tuple(self.offset.shape) != (self.projection.K, self.projection.D):
            raise ValueError(
                f"offset {tuple(self.offset.shape)} does not match projection "
                f"(K={self.projection.K}, D={self.projection.D})"
            )

    @property
    def K(self) -> int:
        return self.offset.shape[0]

    @property
    def D(self) -> int:
        return self.offset.shape[1]

    @property
    def d(self) -> int:
        return self.projection.d

    @property
    def kind(self) -> str:
        return self.projection.kind

    @property
    def batch_key(self) -> tuple:
        """Members with equal keys can be stacked into one batched projection: kind, d, D and whatever
        shape the projection's kind adds (a completed lottery basis: its rank r, which differs by seed
        where a trajectory has fewer independent directions than d)."""
        return (self.kind, self.d, self.D, *getattr(self.projection, "batch_shape", ()))

    def weights(self, theta: Tensor) -> Tensor:
        """θ (K, d) -> w (K, D)."""
        if theta.shape != (self.K, self.d):
            raise ValueError(f"theta must be (K={self.K}, d={self.d}), got {tuple(theta.shape)}")
        return self.offset + self.projection(theta)

    def init_theta(self) -> Tensor:
        """θ starts at 0, so every member starts at its offset: w(0) = b."""
        return self.offset.new_zeros(self.K, self.d)

    def to(self, device: torch.device | str) -> "Subspace":
        return Subspace(self.offset.to(device), self.projection.to(device))


def stack(subspaces: list[Subspace]) -> Subspace:
    """Concatenate members of one kind and one d into a single batched subspace."""
    if not subspaces:
        raise ValueError("stack() needs at least one subspace")
    first = subspaces[0]
    for s in subspaces[1:]:
        if s.batch_key != first.batch_key:
            raise ValueError(f"cannot stack {s.batch_key} with {first.batch_key} (kind, d, D, shape)")
    if len(subspaces) == 1:
        return first
    return Subspace(
        torch.cat([s.offset for s in subspaces]),
        first.projection.stack([s.projection for s in subspaces[1:]]),
    )
