"""Dense projections: a stored d x D matrix of directions per member.

Used for random affine subspaces (Gaussian directions, unit norm over all D, Li et al. 2018) and for
lottery subspaces (an orthonormal basis from a training trajectory).

The directions are stored as rows, Aᵀ of shape (K, d, D): then both A θ and Aᵀ g (the backward) are
row-vector-times-matrix products that stream the matrix once at memory bandwidth. The (K, D, d)
layout makes batched GEMV fall onto a path that is 5-20x slower on CPU (measured).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class DenseProjection:
    """directions: (K, d, D), row i of member k is column i of A_k; A θ = θ @ directions per member."""

    kind = "dense"
    directions: Tensor

    @property
    def K(self) -> int:
        return self.directions.shape[0]

    @property
    def D(self) -> int:
        return self.directions.shape[2]

    @property
    def d(self) -> int:
        return self.directions.shape[1]

    def __call__(self, theta: Tensor) -> Tensor:
        return torch.bmm(theta.unsqueeze(1), self.directions).squeeze(1)

    def to(self, device: torch.device | str) -> "DenseProjection":
        return DenseProjection(self.directions.to(device))

    def stack(self, others: list["DenseProjection"]) -> "DenseProjection":
        return DenseProjection(torch.cat([self.directions] + [o.directions for o in others]))

    def matrix(self) -> Tensor:
        """A as (K, D, d)."""
        return self.directions.transpose(1, 2)


def gaussian_directions(D: int, d: int, seed: int, dtype=torch.float32) -> Tensor:
    """(d, D): d directions of N(0, 1) entries, each scaled to unit norm over all D (the columns of A).

    Not orthogonalized (Li et al. 2018): in high D they are nearly orthogonal anyway.
    """
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, D, generator=g, dtype=dtype)
    return a / a.norm(dim=1, keepdim=True)
