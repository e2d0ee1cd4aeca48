"""Axis-aligned subspaces: A selects d coordinates, a scatter forward and a gather backward.

This is the kernel of every pruning method; `baselines/` decides which coordinates.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class CoordinateProjection:
    """index: (K, d) long, the kept coordinates of each member (distinct within a row)."""

    kind = "coordinates"
    index: Tensor
    D: int

    @property
    def K(self) -> int:
        return self.index.shape[0]

    @property
    def d(self) -> int:
        return self.index.shape[1]

    def __call__(self, theta: Tensor) -> Tensor:
        return theta.new_zeros(self.K, self.D).scatter(1, self.index, theta)

    def to(self, device: torch.device | str) -> "CoordinateProjection":
        return CoordinateProjection(self.index.to(device), self.D)

    def stack(self, others: list["CoordinateProjection"]) -> "CoordinateProjection":
        return CoordinateProjection(torch.cat([self.index] + [o.index for o in others]), self.D)

    def mask(self) -> Tensor:
        """(K, D) bool, True on kept coordinates."""
        return torch.zeros(self.K, self.D, dtype=torch.bool, device=self.index.device).scatter(
            1, self.index, True
        )
