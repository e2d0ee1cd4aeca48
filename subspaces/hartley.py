"""A random orthogonal n x n map in O(n log n), for any n: R = H S₂ Π H S₁.

    H x = (Re F x − Im F x) / √n     the discrete Hartley transform (F: the DFT); H is real,
                                     symmetric and orthogonal (H H = I), for every n, not only 2^k
    S₁, S₂                           diagonal ±1 (Rademacher)
    Π                                a permutation

H acts block-diagonally, H_m ⊕ H_(n−m), with m the largest 7-smooth size below n − 64: an FFT of a
length with a large prime factor is 4-5x slower (Bluestein), and the permutation between the two
layers spreads every column over both blocks. A block-diagonal of orthogonal blocks is orthogonal.

Every factor is orthogonal, so R is exactly orthogonal (to float rounding): its columns are an
orthonormal set of dense, random-looking directions, never stored. Unlike Fastfood's Gaussian
scaling G, the ±1 signs keep R orthogonal, which is what completing an orthonormal basis needs.
Written in torch ops, so autograd gives Rᵀ for the backward, on any device.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
from torch import Tensor


def hartley(x: Tensor) -> Tensor:
    """The orthonormal discrete Hartley transform along the last dimension: (..., n) -> (..., n).

    From the real FFT: H_k = Re X_k − Im X_k for k <= n/2, and X_(n−k) = conj(X_k) gives the rest."""
    n = x.shape[-1]
    f = torch.fft.rfft(x)
    a, b = f.real, f.imag
    return torch.cat([a - b, (a + b)[..., 1 : (n + 1) // 2].flip(-1)], dim=-1) / math.sqrt(n)


# Blocks of H: below this size one FFT of any length is cheap; a remainder block is at least MIN_BLOCK.
ONE_BLOCK, MIN_BLOCK = 4096, 64


def _smooth(n: int) -> bool:
    for p in (2, 3, 5, 7):
        while n % p == 0:
            n //= p
    return n == 1


@functools.lru_cache(maxsize=64)
def blocks(n: int) -> tuple[int, ...]:
    """The block sizes of H on R^n: (n,) when n is small or 7-smooth, else (m, n − m)."""
    if n <= ONE_BLOCK or _smooth(n):
        return (n,)
    m = n - MIN_BLOCK
    while not _smooth(m):
        m -= 1
    return (m, n - m)


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
        h = lambda v: torch.cat([hartley(part) for part in v.split(blocks(self.n), dim=-1)], dim=-1)
        return h(self.signs[1] * h(self.signs[0] * x)[..., self.perm])

    def to(self, device) -> "RandomOrthogonal":
        return RandomOrthogonal(self.signs.to(device), self.perm.to(device))
