"""A = I: full-space training is the subspace with d = D."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class IdentityProjection:
    kind = "identity"
    K: int
    D: int

    @property
    def d(self) -> int:
        return self.D

    def __call__(self, theta: Tensor) -> Tensor:
        return theta

    def to(self, device: torch.device | str) -> "IdentityProjection":
        return self

    def stack(self, others: list["IdentityProjection"]) -> "IdentityProjection":
        return IdentityProjection(self.K + sum(o.K for o in others), self.D)
