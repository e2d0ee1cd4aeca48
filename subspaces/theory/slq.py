"""The linearized quadratic of a network too large to store J, from matrix-free products (stochastic
Lanczos quadrature): what `linearized.linearize` computes exactly, estimated in O(steps · (N·C + D))
memory and a few hundred Jacobian-vector products.

The threshold of a Haar-random subspace (linearized.py) depends on the squared loss only through the
pairs (λ_i, e_i): H = JᵀJ/N's eigenvalues and the loss each eigendirection holds at w0,

    e_i = ½ λ_i z*_i² = (u_iᵀ r0)² / (2N),    u_i the left singular vector of J with s_i² = N λ_i,

(z* from linearized.py; a sign of z*_i moves no Gaussian size). Neither needs J's singular vectors:

- how many eigenvalues lie where — the spectral density of H — is the expectation over probes
  v ~ N(0, I_D) of the spectral measure of v, and k Lanczos steps on v give that measure's k-point
  Gauss quadrature (nodes θ_j = Ritz values, weights τ_j² = first components² of T's eigenvectors),
  exact for polynomials of degree < 2k (Golub & Meurant; Ubaru, Chen & Saad 2017);
- where the loss lies is the spectral measure of r0 under K = JJᵀ/N (same nonzero eigenvalues):
  Σ_i (u_iᵀ r0)² δ(λ − λ_i), whose quadrature comes from one Lanczos run started at r0; its mass
  at λ = 0 is the floor L_min (what no w reaches: r0 outside J's range).

Both are discrete measures on Ritz values. A synthetic diagonal quadratic with the same pairs — D
eigenvalues at the quantiles of the density (its mass at 0 the flat directions), each carrying the
energy per eigenvalue of a kernel-smoothed (in log λ) ratio of the two measures, scaled to the total —
has the same cone sizes to Monte Carlo and quadrature accuracy; tests/test_slq.py measures that accuracy
against the exact route on a network small enough for both. H v = Jᵀ(J v)/N and K u = J(Jᵀ u)/N
are two pullbacks of one forward pass at w0 (J v as the vjp of u -> Jᵀu), float64.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.func import vjp

from subspaces.flat import FlatModel
from subspaces.theory.linearized import RANK_TOL, Flow, Linearized, _float64
from subspaces.theory.quadratic import Quadratic

SMOOTHING = 0.15  # kernel width in log10 λ (decades) for the energy-per-eigenvalue ratio


@dataclass(frozen=True)
class Products:
    """Matrix-free J at w0 on inputs x (N examples, C outputs), float64 in and out:
    jvp: (D,) -> (N, C);  vjp: (N, C) -> (D,)."""

    jvp: Callable[[Tensor], Tensor]
    vjp: Callable[[Tensor], Tensor]
    N: int
    C: int
    D: int

    def gauss_newton(self, v: Tensor) -> Tensor:
        """H v = Jᵀ J v / N, (D,) -> (D,)."""
        return self.vjp(self.jvp(v)) / self.N

    def kernel(self, u: Tensor) -> Tensor:
        """K u = J Jᵀ u / N, (N·C,) -> (N·C,)."""
        return self.jvp(self.vjp(u.reshape(self.N, self.C))).reshape(-1) / self.N


def products(flat: FlatModel, w0: Tensor, x: Tensor, chunk: int = 256) -> Products:
    """J's products at w0 over x (N, ...), `chunk` examples per call of the network. The module must be in
    float64 while they are used (`linearized._float64(flat)`)."""
    # 256: one Gauss-Newton product of the mnist5k Conv-2 (3,500 images) took 1.2 s in chunks of 256 or 128,
    # 2.3 s in 512s, 3.7 s in 4096s (float64 activations of a large chunk overflow the caches)
    w = w0.detach().to(torch.float64)
    x = x.to(torch.float64)
    parts = [x[i : i + chunk] for i in range(0, len(x), chunk)]
    with torch.no_grad():
        C = flat(w, parts[0][:1]).shape[-1]

    # One forward pass per chunk; u -> Jᵀu is its pullback, and v -> Jv the pullback of that linear map
    # (the double-vjp trick): 15-40x faster here than forward-mode jvp, which pays its overhead per call.
    pulls = [vjp(lambda p, xb=xb: flat(p, xb), w)[1] for xb in parts]
    sizes = [len(xb) for xb in parts]
    pushes = [vjp(lambda u, pull=pull: pull(u)[0], torch.zeros(n, C, dtype=torch.float64))[1]
              for pull, n in zip(pulls, sizes)]

    def jv(v: Tensor) -> Tensor:
        return torch.cat([push(v)[0] for push in pushes]).detach()

    def vj(u: Tensor) -> Tensor:
        return sum(pull(ub)[0] for pull, ub in zip(pulls, u.split(sizes))).detach()

    return Products(jv, vj, len(x), C, w.numel())


def tridiagonalize(matvec: Callable[[Tensor], Tensor], start: Tensor, steps: int) -> tuple[Tensor, Tensor]:
    """k <= steps Lanczos steps from `start` on a symmetric PSD operator: (Q (k, n) orthonormal rows, T (k, k))
    with Q A Qᵀ = T; fewer than `steps` when the Krylov space closes. Full reorthogonalization (twice), so
    T's eigenvalues are Ritz values, not ghosts."""
    q = start / start.norm()
    basis, alphas, betas = [q], [], []
    for _ in range(steps):
        w = matvec(q)
        alphas.append(float(q @ w))
        Q = torch.stack(basis)
        for _ in range(2):
            w = w - Q.T @ (Q @ w)
        b = float(w.norm())
        if b <= 1e-10 * max(abs(a) for a in alphas) or len(alphas) == steps:
            break
        betas.append(b)
        q = w / b
        basis.append(q)
    T = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    if betas:
        off = torch.tensor(betas, dtype=torch.float64)
        T = T + torch.diag(off, 1) + torch.diag(off, -1)
    return torch.stack(basis[: len(alphas)]), T


def lanczos(matvec: Callable[[Tensor], Tensor], start: Tensor, steps: int) -> tuple[Tensor, Tensor]:
    """Gauss quadrature of start's spectral measure: (nodes (k,), weights (k,) summing to 1), exact for
    polynomials of degree < 2k (and the measure itself when the Krylov space closes)."""
    theta, S = torch.linalg.eigh(tridiagonalize(matvec, start, steps)[1])
    return theta.clamp_min(0.0), S[0] ** 2


def krylov_flow(p: Products, targets: Tensor, initial: Tensor, floor: float, steps: int = 150) -> Flow:
    """Gradient flow of the linearized squared loss from w0 in the Krylov space of b = Jᵀr0/N:
    w(t) − w0 = ((1 − e^{−Ht}) / H) b ≈ ‖b‖ Qᵀ S ((1 − e^{−θt}) / θ) Sᵀe1 with T = S diag(θ) Sᵀ, i.e. the
    form of linearized.Flow with rates θ, basis QᵀS and z*_j = ‖b‖ S_{0j} / θ_j (the exact flow when the
    Krylov space closes). targets, initial: (N, C); floor: L_min (what the flow's loss tends to)."""
    r0 = targets.to(torch.float64) - initial.to(torch.float64)
    b = p.vjp(r0) / p.N
    Q, T = tridiagonalize(p.gauss_newton, b, steps)
    theta, S = torch.linalg.eigh(T)
    keep = theta > RANK_TOL ** 0.5 * float(theta.max())
    theta, S = theta[keep], S[:, keep]
    return Flow(theta, float(b.norm()) * S[0] / theta, Q.T @ S, floor)


@dataclass(frozen=True)
class Spectrum:
    """The two measures: `density` (nodes, eigenvalue counts summing to D) and `energy` (nodes, loss at
    w0 summing to L(w0)), each a discrete measure on Ritz values."""

    density: tuple[Tensor, Tensor]
    energy: tuple[Tensor, Tensor]
    D: int
    N: int

    @property
    def lambda_max(self) -> float:
        return max(float(self.density[0].max()), float(self.energy[0].max()))


def spectrum(p: Products, targets: Tensor, initial: Tensor, probes: int = 8, steps: int = 150,
             seed: int = 0) -> Spectrum:
    """The density of H from `probes` Gaussian probes and the energy measure of r0 = Y − f0 under K,
    `steps` Lanczos steps each. targets, initial: (N, C)."""
    gen = torch.Generator().manual_seed(seed)
    nodes, counts = [], []
    for _ in range(probes):
        theta, tau2 = lanczos(p.gauss_newton, torch.randn(p.D, generator=gen, dtype=torch.float64), steps)
        nodes.append(theta)
        counts.append(tau2 * p.D / probes)
    r0 = (targets.to(torch.float64) - initial.to(torch.float64)).reshape(-1)
    theta, omega = lanczos(p.kernel, r0, steps)
    return Spectrum((torch.cat(nodes), torch.cat(counts)), (theta, omega * float(r0 @ r0) / (2 * p.N)),
                    p.D, p.N)


def _smoothed(at: Tensor, nodes: Tensor, mass: Tensor) -> Tensor:
    """Σ_j mass_j · N(log10 at; log10 node_j, SMOOTHING²): a measure's density in log10 λ at `at` (m,)."""
    diff = (torch.log10(at)[:, None] - torch.log10(nodes)[None]) / SMOOTHING
    return (mass[None] * torch.exp(-0.5 * diff**2)).sum(-1) / (SMOOTHING * math.sqrt(2 * math.pi))


def synthesize(s: Spectrum) -> Linearized:
    """The diagonal quadratic with s's density and energy: D eigenvalues (the flat ones at 0), largest
    first, each with z*_i = √(2 e_i / λ_i). basis is None: no eigenvectors were computed."""
    cut = RANK_TOL ** 0.5 * s.lambda_max  # a Ritz value resolves 0 only to ~√(rounding) of λ_max
    (dn, dc), (en, em) = s.density, s.energy
    floor = float(em[en <= cut].sum())
    keep = dn > cut
    nodes, counts = dn[keep], dc[keep]
    rank = min(s.D, max(1, round(float(counts.sum()))))
    # the rank quantiles of the density's CDF, read with linear interpolation between its nodes
    order = torch.argsort(nodes, descending=True)
    nodes, counts = nodes[order], counts[order]
    cdf = torch.cumsum(counts, 0) - 0.5 * counts
    ranks = torch.arange(rank, dtype=torch.float64) + 0.5
    idx = torch.searchsorted(cdf, ranks).clamp(1, len(cdf) - 1)
    lo, hi = cdf[idx - 1], cdf[idx]
    frac = ((ranks - lo) / (hi - lo).clamp_min(1e-30)).clamp(0, 1)
    logs = torch.log10(nodes)
    lam = 10 ** (logs[idx - 1] + frac * (logs[idx] - logs[idx - 1]))
    curved_en, curved_em = en[en > cut], em[en > cut]
    per = _smoothed(lam, curved_en, curved_em) / _smoothed(lam, nodes, counts).clamp_min(1e-300)
    total = float(curved_em.sum())
    e = per * total / float(per.sum()) if float(per.sum()) > 0 else torch.zeros_like(lam)
    flat = s.D - rank
    eigenvalues = torch.cat([lam, torch.zeros(flat, dtype=torch.float64)])
    z_star = torch.cat([torch.sqrt(2 * e / lam), torch.zeros(flat, dtype=torch.float64)])
    return Linearized(Quadratic(eigenvalues, z_star, torch.zeros_like(eigenvalues)), floor, rank, s.N, None)


def estimate(flat: FlatModel, w0: Tensor, x: Tensor, targets: Tensor, probes: int = 8, steps: int = 150,
             seed: int = 0) -> tuple[Linearized, Spectrum]:
    """The network's linearized quadratic at w0 without J: (synthesized quadratic, the measures it came from)."""
    with _float64(flat):
        p = products(flat, w0, x)
        with torch.no_grad():
            f0 = flat(w0.detach().to(torch.float64), x.to(torch.float64))
        s = spectrum(p, targets, f0, probes, steps, seed)
    return synthesize(s), s
