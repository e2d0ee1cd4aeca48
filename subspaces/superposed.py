"""Several subspaces superposed in one network: w = b + Σ_i A_i θ_i, one θ_i (and one task) per member.

Member i of a superposed projection sees the whole sum, so K tasks train (or are evaluated) at one
shared w. How θ_i learns is the `mode`:
  own  θ_i is moved by its own task's loss only: member i's weights are b + A_i θ_i + sg(Σ_{j≠i} A_j θ_j)
       (sg: stop-gradient), whose value is the shared w;
  sum  every θ_i is moved by the summed loss Σ_j L_j(w): member i's weights are b + Σ_j A_j θ_j.
The population's loss is the sum over members either way (benchmark.training.loop.Population.step).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from subspaces.core import Projection

MODES = ("own", "sum")


@dataclass(frozen=True)
class SuperposedProjection:
    """inner: K members' projections A_i (θ (K, d) -> (K, D)); this maps θ (K, d) to (K, D) where every
    row is Σ_i A_i θ_i (in value), with gradients routed by `mode` (module docstring)."""

    inner: Projection
    mode: str = "own"

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown superposition mode {self.mode!r}; accepted: {', '.join(MODES)}")

    @property
    def kind(self) -> str:
        return f"superposed_{self.mode}.{self.inner.kind}"

    @property
    def K(self) -> int:
        return self.inner.K

    @property
    def D(self) -> int:
        return self.inner.D

    @property
    def d(self) -> int:
        return self.inner.d

    def __call__(self, theta: Tensor) -> Tensor:
        parts = self.inner(theta)  # (K, D): A_i θ_i
        total = parts.sum(0, keepdim=True)  # (1, D)
        if self.mode == "sum":
            return total.expand_as(parts)
        return parts + (total - parts).detach()

    def to(self, device: torch.device | str) -> "SuperposedProjection":
        return SuperposedProjection(self.inner.to(device), self.mode)

    def stack(self, others: list["SuperposedProjection"]) -> "SuperposedProjection":
        # Stacking would merge two packs into one sum: each pack is its own group of a population.
        raise ValueError("superposed projections do not stack: train each pack as its own group")


def superpose(offset: Tensor, parts: Tensor) -> Tensor:
    """b + Σ_i A_i θ_i (D,): offset b (D,) and parts (K, D), row i = A_i θ_i, added in member order."""
    out = offset.clone()
    for row in parts:
        out += row
    return out
