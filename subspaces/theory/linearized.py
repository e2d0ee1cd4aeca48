"""A network linearized at w0 under a squared loss: exactly a quadratic, so its threshold dimension can
be predicted (cones.py) and measured (quadratic.py) without training.

    f_lin(w; x) = f(w0; x) + J(x) (w − w0),       J = ∂f/∂w at w0: (N·C, D) over N examples, C outputs
    L(w) = 1/(2N) Σ_n ‖f_lin(w; x_n) − y_n‖²        (y_n one-hot)

is a quadratic whose Hessian is the Gauss–Newton matrix H = JᵀJ / N (the NTK regime: no second-order
term of f survives the linearization). With r0 = Y − f(w0) (N·C,), b = Jᵀ r0 / N and H = V Λ Vᵀ,
in the rotated coordinates z = Vᵀ(w − w0)

    L = ½ Σ_{λ_i > 0} λ_i (z_i − z*_i)² + L_min,    z*_i = (Vᵀb)_i / λ_i,
    L_min = ‖r0‖² / (2N) − ½ Σ_{λ_i > 0} (Vᵀb)_i² / λ_i   (what no w reaches below; 0 when J has rank N·C)

a diagonal `Quadratic` starting at z = 0, plus a constant. A Haar-random d-dimensional subspace through
w0 is rotation invariant, so the success probability P_s(d, ε) of the network and every cone size are
those of that diagonal quadratic in D dimensions, D − r of them flat (λ = 0, r the rank of J). The cone
of the sub-level set is then C_r × R^{D−r}, statistical dimensions add, and the predicted threshold is

    d(ε) = D − δ(C) = r − δ(C_r),    C_r = cone of {z : ½ Σ λ (z − z*)² <= ε − L_min} in R^r.

Everything is float64: eigenvalues below `RANK_TOL` x λ_max are counted as flat (they are J's rounding).
Gradient flow from w0 has a closed form in the same coordinates, z(t) = z* (1 − e^{−λt}), which gives the
loss at which the linearized network reaches an accuracy (`flow_accuracy`, `loss_at_accuracy`).
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.func import jacrev, vmap

from subspaces.flat import FlatModel
from subspaces.theory import quadratic
from subspaces.theory.quadratic import Quadratic

RANK_TOL = 1e-10  # relative to λ_max: below it an eigenvalue of JᵀJ is float64 rounding, not curvature


@contextmanager
def _float64(flat: FlatModel):
    """The module in float64 for the block (functional_call takes w's dtype; the buffers must follow),
    then back in the dtype it had."""
    dtype = next(iter(flat.module.parameters())).dtype
    flat.module.to(torch.float64)
    try:
        yield
    finally:
        flat.module.to(dtype)


def jacobian(flat: FlatModel, w0: Tensor, x: Tensor, chunk: int = 256) -> Tensor:
    """J = ∂f(w0; x)/∂w in float64: x (N, ...) -> (N·C, D), row n·C + c the gradient of example n's output c.

    Per-example Jacobians (vmap over examples of jacrev), `chunk` examples at a time: N·C·D floats in all.
    The model's buffers, if any, stay as they are (eval-mode statistics)."""
    w = w0.detach().to(torch.float64)

    def one(x1: Tensor) -> Tensor:
        return jacrev(lambda v: flat(v, x1[None].to(torch.float64))[0])(w)  # (C, D)

    with _float64(flat):
        return torch.cat([vmap(one)(x[i : i + chunk]).reshape(-1, w.numel()) for i in range(0, len(x), chunk)])


def outputs(flat: FlatModel, w0: Tensor, x: Tensor) -> Tensor:
    """f(w0; x) in float64, (N, C)."""
    with _float64(flat), torch.no_grad():
        return flat(w0.detach().to(torch.float64), x.to(torch.float64))


@dataclass(frozen=True)
class Linearized:
    """The squared loss of f_lin in H's eigenbasis: `quadratic` (D dims, z from 0, zeros beyond the rank)
    plus `floor` = L_min. basis: V (D, D), columns ordered as quadratic's eigenvalues (largest first); None
    where the quadratic was estimated without eigenvectors (slq.py)."""

    quadratic: Quadratic
    floor: float
    rank: int
    N: int
    basis: Tensor | None

    @property
    def D(self) -> int:
        return self.quadratic.D

    @property
    def initial_loss(self) -> float:
        """L(w0) = ‖r0‖² / (2N)."""
        return self.quadratic.initial_loss + self.floor

    def flow(self) -> Flow:
        """Gradient flow in H's eigenbasis (the curved directions)."""
        r = self.rank
        return Flow(self.quadratic.eigenvalues[:r], self.quadratic.w_star[:r], self.basis[:, :r], self.floor)

    def curved(self) -> Quadratic:
        """The rank-r part (λ > 0), where the cone C_r lives."""
        q, r = self.quadratic, self.rank
        return Quadratic(q.eigenvalues[:r], q.w_star[:r], q.w0[:r])


def linearize(J: Tensor, targets: Tensor, initial: Tensor) -> Linearized:
    """J (N·C, D), targets and initial outputs (N, C) -> the quadratic of 1/(2N) ‖f0 + J(w − w0) − Y‖²."""
    N = targets.shape[0]
    J = J.to(torch.float64)
    r0 = (targets.to(torch.float64) - initial.to(torch.float64)).reshape(-1)
    lam, V = torch.linalg.eigh(J.T @ J / N)  # ascending
    lam, V = lam.flip(0), V.flip(1)
    b = V.T @ (J.T @ r0) / N
    keep = lam > RANK_TOL * float(lam[0])
    rank = int(keep.sum())
    lam = torch.where(keep, lam, torch.zeros_like(lam))
    z_star = torch.where(keep, b / torch.where(keep, lam, torch.ones_like(lam)), torch.zeros_like(b))
    explained = 0.5 * float((lam * z_star**2).sum())
    floor = max(0.0, float(r0 @ r0) / (2 * N) - explained)
    return Linearized(Quadratic(lam, z_star, torch.zeros_like(lam)), floor, rank, N, V)


def min_loss_curves(lin: Linearized, draws: int, seed: int = 0) -> Tensor:
    """Best loss of f_lin in a Haar-random d-dimensional affine subspace through w0, for every d = 0..D:
    (draws, D + 1) float64, L_min included; draw i's numbers depend only on (seed, i).

    Exact in distribution without touching the D − r flat coordinates: a Gaussian A (D, d) enters the
    loss only through its r rows on the curved ones, an (r, d) Gaussian, whose span is Haar-random in R^r
    for d <= r and all of R^r beyond. So the curves are quadratic.min_loss_curves of the rank-r part up to
    d = r and the floor from there: O(r (r/2)²) per draw, not O(D³), and no (D, D) draw held."""
    curved = quadratic.min_loss_curves(lin.curved(), draws, seed) + lin.floor  # (draws, r + 1), column r: floor
    return torch.cat([curved, curved[:, -1:].expand(-1, lin.D - lin.rank)], dim=1)


def one_hot(y: Tensor, classes: int) -> Tensor:
    """(N,) labels -> (N, C) float64 one-hot targets."""
    return torch.nn.functional.one_hot(y.long(), classes).to(torch.float64)


@dataclass(frozen=True)
class Flow:
    """Gradient flow on L from w0 in a basis where it is diagonal: w(t) − w0 = B z(t), z(t) = z* (1 − e^{−μt}),
    L(t) = ½ Σ μ z*² e^{−2μt} + floor. rates μ (m,), z_star (m,), basis B (D, m). Exact in H's eigenbasis
    (`Linearized.flow`); slq.krylov_flow gives the same form from a Krylov space without H."""

    rates: Tensor
    z_star: Tensor
    basis: Tensor
    floor: float


def flow(f: Flow, t: Tensor) -> Tensor:
    """z(t) = z* (1 − e^{−μ t}): t (T,) -> (T, m)."""
    return f.z_star * -torch.expm1(-f.rates * t[:, None])


def flow_loss(f: Flow, t: Tensor) -> Tensor:
    """L(z(t)) along gradient flow, (T,): ½ Σ μ z*² e^{−2μt} + L_min."""
    return 0.5 * (f.rates * f.z_star**2 * torch.exp(-2 * f.rates * t[:, None])).sum(-1) + f.floor


def flow_accuracy(f: Flow, per_coordinate: Tensor, initial_eval: Tensor, y_eval: Tensor,
                  times: int = 400) -> tuple[Tensor, Tensor]:
    """(training loss (T,), evaluation accuracy (T,)) along the flow, t log-spaced from 0.01/μ_max to 100/μ_min.
    per_coordinate: (M·C, m) the evaluation outputs' change per unit of each z (J_eval B); initial_eval (M, C)."""
    M, C = initial_eval.shape
    mu = f.rates[f.rates > 0]
    t = torch.logspace(math.log10(0.01 / float(mu.max())), math.log10(100 / float(mu.min())), times,
                       dtype=torch.float64)
    accs = []
    for ts in t.split(50):
        out = initial_eval.to(torch.float64)[None] + (flow(f, ts) @ per_coordinate.T).reshape(len(ts), M, C)
        accs.append((out.argmax(-1) == y_eval[None].to(out.device)).to(torch.float64).mean(-1))
    return flow_loss(f, t), torch.cat(accs)


def loss_at_accuracy(losses: Tensor, accuracies: Tensor, fraction: float) -> tuple[float, float, float]:
    """(ε, accuracy there, best accuracy): the training loss where the flow first reaches `fraction` x its
    best evaluation accuracy (the benchmark's d*90 rule, with the linearized network as its own reference)."""
    best = float(accuracies.max())
    k = int(torch.nonzero(accuracies >= fraction * best)[0])
    return float(losses[k]), float(accuracies[k]), best
