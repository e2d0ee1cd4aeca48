"""Fastfood projections (Le et al. 2013; Li et al. 2018): A θ = scale * (H G Π H B [θ; 0])[:D].

Stacked blocks: the D rows are covered by nb = ceil(D / L) independent blocks of size
L = 2^ceil(log2 d) (at least `min_block`), each with its own B (±1), Π (a permutation) and
G (N(0, 1)), all applied to the same θ padded to L. Time O(D log L), memory O(D), whatever d is.
With one block (L >= D) this is exactly Li et al.'s single transform; stacking is what Le et al.
do for d < D, and it pads D only up to a multiple of L instead of to the next power of 2 above D.

Columns have unit norm in expectation: each block contributes L sum(G^2) to a column's squared
norm before truncation, so dividing by sqrt(sum over blocks of rows_b sum(G_b^2)) gives norms ~ 1.
The backward is the adjoint, applied by the same transforms (H is symmetric, Π's inverse is a gather).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from subspaces.hadamard import fwht


def _forward(theta, B, perm, G, scale, D):
    """θ (K, d) -> (K, D). B, G: (K, nb, L); perm: (K, nb, L) long; scale: (K,)."""
    K, nb, L = B.shape
    v = theta.new_zeros(K, L)
    v[:, : theta.shape[1]] = theta
    v = fwht(v.unsqueeze(1) * B, inplace=True)  # (K, nb, L)
    v = torch.gather(v, 2, perm) * G
    v = fwht(v, inplace=True).reshape(K, nb * L)[:, :D]
    return v * scale[:, None]


def _adjoint(g, B, inv_perm, G, scale, d):
    """g (K, D) -> Aᵀ g (K, d)."""
    K, nb, L = B.shape
    u = g.new_zeros(K, nb * L)
    u[:, : g.shape[1]] = g * scale[:, None]
    u = fwht(u.view(K, nb, L), inplace=True) * G
    u = torch.gather(u, 2, inv_perm)
    u = (fwht(u, inplace=True) * B).sum(1)  # every block saw the same θ: sum their contributions
    return u[:, :d]


class _FastfoodFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, theta, B, perm, inv_perm, G, scale, D):
        ctx.save_for_backward(B, inv_perm, G, scale)
        ctx.d = theta.shape[1]
        return _forward(theta, B, perm, G, scale, D)

    @staticmethod
    def backward(ctx, g):
        B, inv_perm, G, scale = ctx.saved_tensors
        return _adjoint(g.contiguous(), B, inv_perm, G, scale, ctx.d), None, None, None, None, None, None


@dataclass(frozen=True)
class FastfoodProjection:
    """K members' Fastfood transforms. B, G: (K, nb, L) float; perm, inv_perm: (K, nb, L) long; scale: (K,)."""

    kind = "fastfood"
    B: Tensor
    perm: Tensor
    inv_perm: Tensor
    G: Tensor
    scale: Tensor
    D: int
    d: int

    @property
    def K(self) -> int:
        return self.B.shape[0]

    def __call__(self, theta: Tensor) -> Tensor:
        return _FastfoodFn.apply(theta, self.B, self.perm, self.inv_perm, self.G, self.scale, self.D)

    def adjoint(self, g: Tensor) -> Tensor:
        """Aᵀ g: (K, D) -> (K, d)."""
        return _adjoint(g, self.B, self.inv_perm, self.G, self.scale, self.d)

    def to(self, device) -> "FastfoodProjection":
        t = lambda x: x.to(device)
        return FastfoodProjection(t(self.B), t(self.perm), t(self.inv_perm), t(self.G), t(self.scale), self.D, self.d)

    def stack(self, others: list["FastfoodProjection"]) -> "FastfoodProjection":
        every = [self] + others
        if len({(p.B.shape[1:], p.D, p.d) for p in every}) != 1:
            raise ValueError("cannot stack Fastfood projections of different block layouts")
        cat = lambda name: torch.cat([getattr(p, name) for p in every])
        return FastfoodProjection(cat("B"), cat("perm"), cat("inv_perm"), cat("G"), cat("scale"), self.D, self.d)


def block_size(D: int, d: int, min_block: int = 256) -> int:
    """L = 2^ceil(log2 max(d, min_block)), capped at the single transform that covers all D (and d)."""
    want = max(d, min(min_block, D))
    return min(1 << math.ceil(math.log2(want)), 1 << math.ceil(math.log2(max(D, d))))


def fastfood(D: int, d: int, seed: int, min_block: int = 256, dtype=torch.float32) -> FastfoodProjection:
    """One member's Fastfood projection (K = 1) with d unit-norm (in expectation) columns over D.

    d > D is allowed (one transform of L >= d, its first D rows: a map of rank D), for maps onto parts of
    a network smaller than θ, e.g. SAID's per-layer maps; a subspace of the whole network has d <= D."""
    if d < 1 or D < 1:
        raise ValueError(f"Fastfood needs d >= 1 and D >= 1, got d = {d}, D = {D}")
    L = block_size(D, d, min_block)
    nb = -(-D // L)
    g = torch.Generator().manual_seed(seed)
    B = (torch.randint(0, 2, (1, nb, L), generator=g) * 2 - 1).to(dtype)
    perm = torch.argsort(torch.rand(1, nb, L, generator=g), dim=2)
    inv_perm = torch.argsort(perm, dim=2)
    G = torch.randn(1, nb, L, generator=g, dtype=dtype)
    rows = torch.full((nb,), L, dtype=torch.float64)
    rows[-1] = D - (nb - 1) * L
    norm2 = (rows * (G[0].double() ** 2).sum(1)).sum()
    scale = (1.0 / norm2.sqrt()).to(dtype).reshape(1)
    return FastfoodProjection(B, perm, inv_perm, G, scale, D, d)
