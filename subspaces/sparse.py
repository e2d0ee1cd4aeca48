"""Very sparse random projections (Li, Hastie & Church 2006; Li et al. 2018's sparse variant).

Each of the d columns has c = round(sqrt(D)) nonzeros (density ~ 1/sqrt(D)) of random sign at
random rows, scaled to exactly unit norm. Stored as (row, value) per column: memory O(d sqrt(D)),
time O(d sqrt(D)) per product; forward is a scatter-add, backward a gather (autograd derives it).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class SparseProjection:
    """rows, values: (K, d, c); column j of member k has values[k, j] at rows[k, j]."""

    kind = "sparse"
    rows: Tensor
    values: Tensor
    D: int

    @property
    def K(self) -> int:
        return self.rows.shape[0]

    @property
    def d(self) -> int:
        return self.rows.shape[1]

    def __call__(self, theta: Tensor) -> Tensor:
        K, d, c = self.rows.shape
        contrib = (self.values * theta.unsqueeze(-1)).reshape(K, d * c)
        return theta.new_zeros(K, self.D).scatter_add(1, self.rows.reshape(K, d * c), contrib)

    def to(self, device) -> "SparseProjection":
        return SparseProjection(self.rows.to(device), self.values.to(device), self.D)

    def stack(self, others: list["SparseProjection"]) -> "SparseProjection":
        every = [self] + others
        if len({p.rows.shape[2] for p in every}) != 1:
            raise ValueError("cannot stack sparse projections with different nonzeros per column")
        return SparseProjection(torch.cat([p.rows for p in every]), torch.cat([p.values for p in every]), self.D)

    def matrix(self) -> Tensor:
        """A as a dense (K, D, d) tensor (for tests and small D only)."""
        K, d, c = self.rows.shape
        out = torch.zeros(K, self.D, d, dtype=self.values.dtype, device=self.values.device)
        cols = torch.arange(d, device=self.rows.device).view(1, d, 1).expand(K, d, c)
        ks = torch.arange(K, device=self.rows.device).view(K, 1, 1).expand(K, d, c)
        out.index_put_((ks, self.rows, cols), self.values, accumulate=True)
        return out


def sparse_random(D: int, d: int, seed: int, nonzeros: int | None = None, dtype=torch.float32) -> SparseProjection:
    """One member (K = 1) with d columns of `nonzeros` (default round(sqrt(D))) distinct rows each, unit norm."""
    c = min(D, nonzeros or max(1, round(D**0.5)))
    g = torch.Generator().manual_seed(seed)
    rows = torch.randint(0, D, (d, c), generator=g).sort(dim=1).values
    values = (torch.randint(0, 2, (d, c), generator=g) * 2 - 1).to(dtype)
    # Rows drawn twice in one column would add up; drop repeats so every column has distinct rows.
    repeat = torch.zeros_like(rows, dtype=torch.bool)
    repeat[:, 1:] = rows[:, 1:] == rows[:, :-1]
    values[repeat] = 0
    values /= (values != 0).sum(1, keepdim=True).to(dtype).sqrt()
    return SparseProjection(rows[None], values[None], D)
