"""Seeds are derived, not shared: (base seed, purpose, ...) -> an independent 63-bit seed."""
from __future__ import annotations

import hashlib

import torch


def derive_seed(base: int, *purpose: object) -> int:
    """A stable seed for one purpose, e.g. derive_seed(0, "init"), derive_seed(0, "subspace", "random_affine", 512)."""
    key = repr((int(base),) + tuple(purpose)).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") & ((1 << 63) - 1)


def generator(base: int, *purpose: object) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(base, *purpose))
