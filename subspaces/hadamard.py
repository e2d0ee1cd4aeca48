"""Fast Walsh-Hadamard transform (unnormalized, H H = L I) along the last axis.

H_L is the Kronecker product of small Hadamard matrices H_m (L = m1 m2 ... mf), so the transform
is f passes: view x as (..., m1, ..., mf), multiply the last axis by H_mf (one dense GEMM of
(N L / mf, mf) x (mf, mf)), rotate that axis to the front, repeat. After f passes the axes are back
in order. Each pass streams x once, the GEMMs run at BLAS speed, and nothing is kept for autograd
(callers wrap it in a custom backward: H is symmetric, so the adjoint is the transform itself).
"""
from __future__ import annotations

import functools

import torch
from torch import Tensor

from subspaces import native

# Largest factor, in bits: larger factors mean fewer passes but more flops per element (2 m each).
MAX_FACTOR_BITS = 6


@functools.lru_cache(maxsize=64)
def hadamard_matrix(m: int, dtype: torch.dtype, device: str) -> Tensor:
    """The unnormalized Sylvester Hadamard matrix H_m (m a power of 2), entries ±1."""
    h = torch.ones(1, 1, dtype=dtype)
    while h.shape[0] < m:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h.to(device)


def factor_bits(n_bits: int, max_bits: int = MAX_FACTOR_BITS) -> list[int]:
    """Split 2^n_bits into as few, as even power-of-2 factors of at most 2^max_bits as possible."""
    if n_bits == 0:
        return []
    f = -(-n_bits // max_bits)
    base, extra = divmod(n_bits, f)
    return [base + 1] * extra + [base] * (f - extra)


def fwht(x: Tensor, inplace: bool = False) -> Tensor:
    """Unnormalized Walsh-Hadamard transform of x (..., L) along the last axis, L a power of 2.

    On CPU in float32 it runs the compiled butterfly (`subspaces.native`) when that could be built;
    elsewhere (GPU, float64, no compiler) the GEMM chain below. inplace=True lets the compiled path
    overwrite x (a temporary the caller owns) instead of copying it.
    """
    L = x.shape[-1]
    if L & (L - 1):
        raise ValueError(f"fwht needs a power-of-2 length, got {L}")
    if x.device.type == "cpu" and x.dtype == torch.float32 and not x.requires_grad and native.available():
        y = x if inplace and x.is_contiguous() else x.contiguous().clone()
        return native.fwht_inplace(y)
    return fwht_gemm(x)


def fwht_gemm(x: Tensor) -> Tensor:
    """The pure-torch transform: log2(L) bits in a few Kronecker factors, one GEMM each."""
    L = x.shape[-1]
    lead = x.shape[:-1]
    bits = factor_bits(L.bit_length() - 1)
    ms = [1 << b for b in bits]
    y = x.reshape(-1, *ms)
    for m in reversed(ms):
        shape = y.shape
        y = (y.reshape(-1, m) @ hadamard_matrix(m, x.dtype, str(x.device))).reshape(shape)
        y = y.movedim(-1, 1)  # bring the next factor's axis last; contiguous copy on the next reshape
    return y.reshape(*lead, L)
