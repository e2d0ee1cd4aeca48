"""A random orthogonal n x n map in O(n log n), for any n: R = H S₂ Π H S₁.

    H x = (Re F x − Im F x) / √n     the discrete Hartley transform (F: the DFT); H is real,
                                     symmetric and orthogonal (H H = I), for every n, not only 2^k
    S₁, S₂                           diagonal ±1 (Rademacher)
    Π                                a permutation

Every factor is orthogonal, so R is exactly orthogonal (to float rounding): its columns are an
orthonormal set of dense, random-looking directions, never stored. Unlike Fastfood's Gaussian
scaling G, the ±1 signs keep R orthogonal, which is what completing an orthonormal basis needs.
Written in torch ops, so autograd gives Rᵀ for the backward, on any device.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


def hartley(x: Tensor) -> Tensor:
    """The orthonormal discrete Hartley transform along the last dimension: (..., n) -> (..., n)."""
    f = torch.fft.fft(x)
    return (f.real - f.imag) / math.sqrt(x.shape[-1])


@dataclass(frozen=True)
class RandomOrthogonal:
    """R = H S₂ Π H S₁ on R^n. signs: (2, n) of ±1; perm: (n,) long."""

    signs: Tensor
    perm: Tensor

    @classmethod
    def draw(cls, n: int, seed: int, dtype=torch.float32) -> "RandomOrthogonal":
        g = torch.Generator().manual_seed(seed)
        signs = torch.randint(0, 2, (2, n), generator=g).to(dtype) * 2 - 1
        return cls(signs, torch.randperm(n, generator=g))

    @property
    def n(self) -> int:
        return self.perm.shape[0]

    def __call__(self, x: Tensor) -> Tensor:
        """R x for each row: x (M, m ≤ n), zero-padded to n (the first m columns of R) -> (M, n)."""
        if x.shape[-1] < self.n:
            x = torch.nn.functional.pad(x, (0, self.n - x.shape[-1]))
        return hartley(self.signs[1] * hartley(self.signs[0] * x)[..., self.perm])

    def to(self, device) -> "RandomOrthogonal":
        return RandomOrthogonal(self.signs.to(device), self.perm.to(device))
