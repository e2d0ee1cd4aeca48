"""Quadratic landscapes, and the exact best loss a random affine subspace can reach on them.

L(w) = ½ (w − w*)ᵀ H (w − w*) with H = diag(λ) positive definite, in D dimensions. Inside the
affine subspace w0 + span(A), A: (D, d), the best loss is a least-squares problem,

    min_θ L(w0 + Aθ) = ½ min_θ ‖u + H^½ A θ‖² = ½ ‖(I − P_{H^½ A}) u‖²,    u = H^½ (w0 − w*),

so whether a subspace reaches L ≤ ε is decided exactly: no optimizer, no SGD noise.

Nested subspaces make every d come from one factorization: with B = [H^½ A | u] and B = QR, the
last column of R holds c_k = q_kᵀu, and the best loss over the first k columns of A is
½ (‖u‖² − Σ_{j≤k} c_j²). The cost is O(D m²) for m columns; for d > D/2 the complement is smaller:
span(A)^⊥ of a Gaussian A is itself a uniformly random (D − d)-dimensional subspace, spanned by a
Gaussian N, and (H^½ span(A))^⊥ = H^{-½} span(N), so the best loss is ½ ‖P_{H^{-½} N} u‖² with
only D − d columns. Each d is then exact in distribution (a Haar-random subspace), which is all a
success probability needs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

SPECTRA = ("flat", "power", "spiked")


@dataclass(frozen=True)
class Quadratic:
    """L(w) = ½ (w − w*)ᵀ diag(eigenvalues) (w − w*); w0 is where training starts. float64, (D,) each."""

    eigenvalues: Tensor
    w_star: Tensor
    w0: Tensor

    @property
    def D(self) -> int:
        return self.eigenvalues.numel()

    def loss(self, w: Tensor) -> Tensor:
        """w: (..., D) -> (...)."""
        return 0.5 * (self.eigenvalues * (w - self.w_star) ** 2).sum(-1)

    @property
    def initial_loss(self) -> float:
        return float(self.loss(self.w0))

    @property
    def whitened_offset(self) -> Tensor:
        """u = H^½ (w0 − w*), so that L(w0 + x) = ½ ‖u + H^½ x‖²."""
        return self.eigenvalues.sqrt() * (self.w0 - self.w_star)


def spectrum(name: str, D: int, alpha: float = 1.0, spikes: int = 10, spike_scale: float = 100.0) -> Tensor:
    """H's eigenvalues, (D,) float64, largest first.

    flat: all 1. power: λ_i = i^-alpha (i = 1..D). spiked: `spikes` eigenvalues of `spike_scale`
    over a flat bulk of 1 (a few stiff directions, as in trained networks' Hessians).
    """
    if D < 2:
        raise ValueError(f"D={D}: a landscape needs D >= 2")
    if name == "flat":
        return torch.ones(D, dtype=torch.float64)
    if name == "power":
        if alpha <= 0:
            raise ValueError(f"alpha={alpha}: the power-law exponent must be > 0")
        return torch.arange(1, D + 1, dtype=torch.float64) ** -alpha
    if name == "spiked":
        if not 0 < spikes < D or spike_scale <= 0:
            raise ValueError(f"spikes={spikes}, spike_scale={spike_scale}: need 0 < spikes < D={D} and scale > 0")
        lam = torch.ones(D, dtype=torch.float64)
        lam[:spikes] = spike_scale
        return lam
    raise ValueError(f"unknown spectrum {name!r}; accepted: {', '.join(SPECTRA)}")


def landscape(D: int, spectrum_name: str = "flat", distance: float = 1.0, seed: int = 0, **spectrum_options) -> Quadratic:
    """w* = 0 and w0 at `distance` from it in a seeded uniformly random direction."""
    if distance <= 0:
        raise ValueError(f"distance={distance}: w0 must be away from w* (> 0)")
    gen = torch.Generator().manual_seed(seed)
    direction = torch.randn(D, generator=gen, dtype=torch.float64)
    w0 = distance * direction / direction.norm()
    return Quadratic(spectrum(spectrum_name, D, **spectrum_options), torch.zeros(D, dtype=torch.float64), w0)


def nested_min_loss(q: Quadratic, directions: Tensor) -> Tensor:
    """Best loss over w0 + span(first k columns), for k = 0..m.

    directions: (n, D, m) -> (n, m + 1). Exact (least squares); float64.
    """
    u = q.whitened_offset
    n = directions.shape[0]
    B = torch.cat([q.eigenvalues.sqrt()[:, None] * directions.to(torch.float64), u.expand(n, -1)[..., None]], dim=-1)
    coeff = torch.linalg.qr(B, mode="r")[1][:, : directions.shape[-1], -1]  # (n, m): c_k = q_kᵀ u
    explained = torch.cat([coeff.new_zeros(n, 1), (coeff**2).cumsum(-1)], dim=-1)
    return (0.5 * (u.square().sum() - explained)).clamp_min(0.0)


def nested_min_loss_complement(q: Quadratic, normals: Tensor) -> Tensor:
    """Best loss over w0 + {x : x ⊥ first k columns of `normals`} (a (D − k)-dim subspace), k = 0..m.

    normals: (n, D, m) -> (n, m + 1). Exact; float64.
    """
    u = q.whitened_offset
    n = normals.shape[0]
    B = torch.cat([normals.to(torch.float64) / q.eigenvalues.sqrt()[:, None], u.expand(n, -1)[..., None]], dim=-1)
    coeff = torch.linalg.qr(B, mode="r")[1][:, : normals.shape[-1], -1]
    return 0.5 * torch.cat([coeff.new_zeros(n, 1), (coeff**2).cumsum(-1)], dim=-1)


def min_loss_curves(q: Quadratic, draws: int, seed: int = 0, max_bytes: int = 256 * 2**20) -> Tensor:
    """Best loss in a Haar-random d-dimensional affine subspace through w0, for every d = 0..D.

    Returns (draws, D + 1) float64: row i, column d is one draw's exact min of L over w0 + span(A_d).
    d <= D/2 uses nested Gaussian directions, d > D/2 nested Gaussian normals of the complement, so
    a draw costs O(D (D/2)²); draws are batched in chunks of at most `max_bytes` of matrices, and
    draw i's numbers depend only on (seed, i).
    Within each half a row is non-increasing in d (nested subspaces); across the halves the draws
    are independent, which leaves every column's distribution exact.
    """
    D = q.D
    forward, backward = D // 2, D - D // 2 - 1  # columns: d = 0..forward, and D - k for k = 0..backward
    chunk = max(1, max_bytes // (8 * D * (forward + 2)))
    rows = []
    for start in range(0, draws, chunk):
        # One generator per draw: the numbers do not depend on how draws are chunked.
        gens = [torch.Generator().manual_seed((seed * 0x9E3779B97F4A7C15 + i) % 2**64) for i in range(start, min(start + chunk, draws))]
        directions = torch.stack([torch.randn(D, forward, generator=g, dtype=torch.float64) for g in gens])
        normals = torch.stack([torch.randn(D, backward, generator=g, dtype=torch.float64) for g in gens])
        low = nested_min_loss(q, directions)
        high = nested_min_loss_complement(q, normals)
        rows.append(torch.cat([low, high.flip(-1)], dim=-1))  # high[:, k] is d = D - k
    return torch.cat(rows)


def success_probability(curves: Tensor, eps: Tensor) -> Tensor:
    """P_s(d, ε) = fraction of draws whose best loss is <= ε. curves (n, D + 1), eps (E,) -> (E, D + 1)."""
    return (curves[None, :, :] <= eps[:, None, None]).to(torch.float64).mean(1)


def crossing(probability: Tensor, level: float) -> float:
    """The d at which P_s first reaches `level`, linearly interpolated between integers. (D + 1,) -> d.

    math.inf when it never does.
    """
    hit = torch.nonzero(probability >= level)
    if hit.numel() == 0:
        return math.inf
    d = int(hit[0])
    if d == 0:
        return 0.0
    lo, hi = float(probability[d - 1]), float(probability[d])
    return d - 1 + (level - lo) / (hi - lo)
