"""Structure-aware intrinsic dimension (SAID, Aghajanyan et al. ACL'21): one random map per layer, each
times a learned scale of that layer.

    θ = [θ' ; λ],  θ' (d − m),  λ (m, one per layer l):   w_l = b_l + (1 + λ_l) · P_l θ'

P_l: D_l × (d − m) with unit-norm columns (a Fastfood transform, unit norm in expectation as everywhere
in dofbench, or dense Gaussian columns of exactly unit norm where d − m is tiny). A layer with fewer
coordinates than θ' gets the first D_l rows of one transform of size >= d − m: a map onto the whole
layer, at O(d log d) per member instead of a stored D_l × (d − m) matrix (2x faster steps on the
transformer of `python -m benchmark architectures` at d = D/2). The scales are counted in d, so a SAID
member has exactly d trainable numbers, matched with every other method. The scale is 1 + λ_l, not λ_l:
θ starts at 0, and a scale of 0 would leave θ' without a gradient (and λ too, since P θ' = 0); at θ = 0
the scale is 1.

Note: (1 + λ_l) P_l θ' is bilinear in (λ, θ'), not linear: a SAID member is not an affine subspace
w = b + A θ but a union of rescaled ones; everything that only trains θ by gradient works unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from subspaces.core import Projection
from subspaces.random import random_projection


def layer_slices(names: tuple[str, ...], slices: tuple[slice, ...]) -> tuple[slice, ...]:
    """The coordinate range of each layer (module): consecutive parameters with one module prefix
    ("blocks.0.mlp.0.weight" and ".bias" are one layer), covering 0..D in order."""
    out: list[slice] = []
    prefix = None
    for name, s in zip(names, slices):
        mine = name.rpartition(".")[0]
        if out and mine == prefix and out[-1].stop == s.start:
            out[-1] = slice(out[-1].start, s.stop)
        else:
            out.append(s)
        prefix = mine
    return tuple(out)


def layer_map(D_l: int, d: int, seed: int) -> Projection:
    """P_l (K = 1): θ' (1, d) -> (1, D_l), unit-norm columns (d > D_l allowed: rank D_l)."""
    return random_projection("auto", D_l, d, seed)


@dataclass(frozen=True)
class SAIDProjection:
    """K members: layers (m slices covering 0..D), maps[l] the K members' P_l stacked; θ (K, d) -> (K, D)."""

    kind = "said"
    layers: tuple[slice, ...]
    maps: tuple[Projection, ...]

    @property
    def K(self) -> int:
        return self.maps[0].K

    @property
    def D(self) -> int:
        return self.layers[-1].stop

    @property
    def d(self) -> int:
        return self.maps[0].d + len(self.layers)

    def __call__(self, theta: Tensor) -> Tensor:
        m = len(self.layers)
        shared, scale = theta[:, :-m], 1.0 + theta[:, -m:]  # (K, d − m), (K, m)
        return torch.cat([P(shared) * scale[:, l:l + 1] for l, P in enumerate(self.maps)], dim=1)

    def to(self, device: torch.device | str) -> "SAIDProjection":
        return SAIDProjection(self.layers, tuple(P.to(device) for P in self.maps))

    def stack(self, others: list["SAIDProjection"]) -> "SAIDProjection":
        if any(o.layers != self.layers or o.d != self.d for o in others):
            raise ValueError("cannot stack SAID projections of different layers or d")
        return SAIDProjection(self.layers, tuple(P.stack([o.maps[l] for o in others]) for l, P in enumerate(self.maps)))


def said(layers: tuple[slice, ...], d: int, seed: int) -> SAIDProjection:
    """One member's SAID projection (K = 1) over these layers with d numbers in all (d − m shared, m scales)."""
    m = len(layers)
    if d <= m:
        raise ValueError(f"SAID needs d > {m}, the number of layers (one scale each, plus at least one shared "
                         f"number); got d = {d}")
    return SAIDProjection(layers, tuple(layer_map(s.stop - s.start, d - m, (seed + 0x9E3779B97F4A7C15 * (l + 1)) % 2**63)
                                        for l, s in enumerate(layers)))
