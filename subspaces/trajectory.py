"""Lottery subspaces (Larsen et al. 2022): the top principal directions of a training trajectory."""
from __future__ import annotations

import torch
from torch import Tensor


def principal_directions(deltas: Tensor, d: int, centered: bool = False) -> Tensor:
    """Orthonormal (D, r) basis of the top r = min(d, rank) principal directions of a trajectory.

    deltas: (T, D), snapshots w_k - w0. Uncentered by default (Larsen et al.): the directions that
    explain the displacement from w0, not the variance around the trajectory's mean.
    Works on the T x T Gram matrix, so memory is O(T D + T^2) and no D x D matrix is formed.
    Computed in float64 for a basis that stays orthonormal to ~1e-6 in float32.
    """
    if deltas.dim() != 2:
        raise ValueError(f"deltas must be (T, D), got shape {tuple(deltas.shape)}")
    x = deltas.double()
    if centered:
        x = x - x.mean(dim=0, keepdim=True)
    gram = x @ x.T
    evals, evecs = torch.linalg.eigh(gram)  # ascending
    evals, evecs = evals.flip(0), evecs.flip(1)
    tol = evals[0].clamp_min(0) * max(x.shape) * torch.finfo(torch.float64).eps
    rank = int((evals > tol).sum())
    r = min(d, rank)
    # Left singular vectors: u_i = Xᵀ v_i / σ_i.
    basis = x.T @ evecs[:, :r] / evals[:r].sqrt()
    # One re-orthonormalization pass removes what the Gram route loses for small σ.
    basis, _ = torch.linalg.qr(basis)
    return basis.to(deltas.dtype)


def complete_basis(basis: Tensor, d: int, seed: int) -> Tensor:
    """Extend an orthonormal (D, r) basis to (D, d) with random orthonormal directions orthogonal to it.

    Used when a trajectory has fewer principal directions than the requested d.
    """
    D, r = basis.shape
    if d <= r:
        return basis[:, :d]
    g = torch.Generator().manual_seed(seed)
    extra = torch.randn(D, d - r, generator=g, dtype=torch.float64)
    b = basis.double()
    extra -= b @ (b.T @ extra)
    extra -= b @ (b.T @ extra)  # twice is enough (Kahan)
    q, _ = torch.linalg.qr(extra)
    return torch.cat([b, q], dim=1).to(basis.dtype)
