"""The cone a subspace must meet to reach a sub-level set, its projection, and its size.

An affine subspace w0 + span(A) meets S(ε) = {w : L(w) <= ε} (with L(w0) > ε) exactly when
span(A) meets the convex cone C = cone(S(ε) − w0) outside 0. For a Haar-random d-dimensional
span(A) this jumps from improbable to certain near d = D − δ(C), where

    δ(C) = E ‖Π_C(g)‖²                         statistical dimension (Amelunxen, Lotz, McCoy, Tropp 2014)
    w(C) = E sup_{x ∈ C, ‖x‖ <= 1} ⟨g, x⟩ = E ‖Π_C(g)‖     Gaussian width (Gordon's escape through a mesh)

over g ~ N(0, I_D), and w² <= δ <= w² + 1. (The width of C's trace on the unit *sphere* differs
from this only when g lies in the polar cone C°, where the sphere version is negative; `sizes`
reports how often that happened.)

The cone of a quadratic's sub-level set. With L(w) = ½ (w − w*)ᵀH(w − w*), c = w* − w0,
z ∈ C iff z = t x with t > 0 and L(w0 + x) <= ε, i.e. (z − t c)ᵀH(z − t c) <= 2ε t² for some t > 0.
Minimizing the left side minus the right over t (at t = cᵀHz / κ) gives

    C = {z : hᵀz >= √κ ‖H^½ z‖},    h = H c,   κ = cᵀHc − 2ε > 0,

a circular cone in whitened coordinates H^½ z with sin²(half-angle) = ε / L(w0). Its polar is the
same kind of cone with (H, h, κ) -> (H⁻¹, −c, 2ε).

Projection. The two nappes C ∪ −C are {z : zᵀMz <= 0}, M = κH − hhᵀ. Projecting g onto that set
is a trust-region-like problem with one quadratic constraint, for which the S-lemma makes the
Lagrange conditions sufficient: z(μ) = (I + μM)⁻¹ g with the μ in [0, μ_max) that puts z on the
boundary, where μ_max is where I + μM turns singular. For diagonal H, Sherman–Morrison gives
z(μ) in O(D), and ψ(μ) = z(μ)ᵀMz(μ) is strictly decreasing on [0, μ_max) (ψ' = −2 (Mz)ᵀ(I + μM)⁻¹(Mz)),
from gᵀMg to −∞: a one-dimensional root, found by bisection per sample. If the nearest nappe is −C,
Moreau's decomposition g = Π_C(g) + Π_{C°}(g) and the same root find on the polar cone give Π_C(g)
(both nearest nappes being the wrong ones would force ‖Π_C g‖ = ‖Π_{−C} g‖, a null event).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from subspaces.theory.quadratic import Quadratic

BISECTION_STEPS = 64  # halves a bracket to float64 resolution
ROOT_BISECTIONS = 32  # then a secant step


@dataclass(frozen=True)
class EllipsoidCone:
    """C = {z : hᵀz >= √κ ‖H^½ z‖}, H = diag(eigenvalues). All float64; (D,), (D,), scalar."""

    eigenvalues: Tensor
    h: Tensor
    kappa: float

    def polar(self) -> EllipsoidCone:
        c = self.h / self.eigenvalues
        return EllipsoidCone(1.0 / self.eigenvalues, -c, float((self.h * c).sum()) - self.kappa)

    def margin(self, z: Tensor) -> Tensor:
        """hᵀz − √κ ‖H^½ z‖, >= 0 exactly on C. z: (..., D) -> (...)."""
        return z @ self.h - math.sqrt(self.kappa) * (self.eigenvalues * z**2).sum(-1).sqrt()


def sublevel_cone(q: Quadratic, eps: float) -> EllipsoidCone:
    """cone(S(ε) − w0) for 0 < ε < L(w0)."""
    L0 = q.initial_loss
    if not 0 < eps < L0:
        raise ValueError(f"eps={eps}: the cone needs 0 < eps < L(w0) = {L0:g}")
    c = q.w_star - q.w0
    return EllipsoidCone(q.eigenvalues, q.eigenvalues * c, 2.0 * (L0 - eps))


def _singular_mu(cone: EllipsoidCone) -> float:
    """μ_max: the root of 1 − μ Σ h²/(1 + μκλ) (where I + μM turns singular), by bisection."""
    lam, h2, k = cone.eigenvalues, cone.h**2, cone.kappa

    def phi(mu: float) -> float:
        return 1.0 - mu * float((h2 / (1.0 + mu * k * lam)).sum())

    # φ falls from 1 to 1 − cᵀHc/κ < 0; φ(1/Σh²) > 0, so double from there to bracket the root.
    hi = 1.0 / float(h2.sum())
    while phi(hi) > 0:
        hi *= 2.0
    lo = 0.0
    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        if phi(mid) > 0:
            lo = mid
        else:
            hi = mid
    return lo


def _nearest_nappe(cone: EllipsoidCone, g: Tensor) -> Tensor:
    """Projection of g (n, D) onto C ∪ −C, (n, D)."""
    lam, h, k = cone.eigenvalues, cone.h, cone.kappa

    def z_and_chi(mu: Tensor) -> tuple[Tensor, Tensor]:
        """z(μ) and χ(μ) = φ(μ)² ψ(μ), which has ψ's sign on [0, μ_max) without its pole. mu: (n, 1)."""
        dinv = 1.0 / (1.0 + mu * k * lam)  # (n, D)
        dh = dinv * h
        s = (dh * g).sum(-1, keepdim=True)
        phi = 1.0 - mu * (dh * h).sum(-1, keepdim=True)
        scaled = phi * dinv * g + mu * s * dh  # φ z
        chi = k * (lam * scaled**2).sum(-1) - s.squeeze(-1) ** 2  # hᵀ(φz) = s
        return scaled / phi, chi

    n = g.shape[0]
    lo = torch.zeros(n, 1, dtype=g.dtype)
    hi = torch.full_like(lo, _singular_mu(cone))
    f_lo = k * (lam * g**2).sum(-1) - (g @ h) ** 2  # χ(0) = ψ(0) = gᵀMg
    outside = f_lo > 0  # inside the double cone, g is its own projection
    for _ in range(ROOT_BISECTIONS):
        mid = 0.5 * (lo + hi)
        above = (z_and_chi(mid)[1] > 0)[:, None]  # the root lies above mid
        lo, hi = torch.where(above, mid, lo), torch.where(above, hi, mid)
    # χ is smooth on the tiny bracket left: one secant step lands on the root to rounding.
    f_lo, f_hi = z_and_chi(lo)[1][:, None], z_and_chi(hi)[1][:, None]
    root = torch.where(f_lo > f_hi, (lo * f_hi - hi * f_lo) / (f_hi - f_lo), lo).clamp(lo, hi)
    return torch.where(outside[:, None], z_and_chi(root)[0], g)


def project(cone: EllipsoidCone, g: Tensor) -> Tensor:
    """Euclidean projection onto C. g: (n, D) float64 -> (n, D)."""
    z = _nearest_nappe(cone, g)
    wrong = (z @ cone.h) < 0
    if bool(wrong.any()):
        z[wrong] = g[wrong] - _nearest_nappe(cone.polar(), g[wrong])
    return z


@dataclass(frozen=True)
class Sizes:
    """Monte Carlo sizes of a cone in R^D, each with its standard error."""

    statistical_dimension: float
    statistical_dimension_se: float
    width: float
    width_se: float
    polar_fraction: float  # share of samples with Π_C(g) = 0, i.e. g in the polar cone


def sizes(project_fn: Callable[[Tensor], Tensor], D: int, samples: int, seed: int = 0, chunk: int = 1000) -> Sizes:
    """δ = E ‖Π(g)‖² and w = E ‖Π(g)‖ over g ~ N(0, I_D) for a projection `project_fn`: (n, D) -> (n, D)."""
    gen = torch.Generator().manual_seed(seed)
    norms = torch.cat([
        project_fn(torch.randn(min(chunk, samples - i), D, generator=gen, dtype=torch.float64)).norm(dim=-1)
        for i in range(0, samples, chunk)
    ])
    sq = norms**2
    root_n = math.sqrt(samples)
    return Sizes(float(sq.mean()), float(sq.std()) / root_n, float(norms.mean()), float(norms.std()) / root_n,
                 float((norms <= 1e-12 * math.sqrt(D)).to(torch.float64).mean()))
