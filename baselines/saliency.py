"""Pruning at initialization: a score per weight, and the d weights it keeps.

    SNIP     (Lee et al. ICLR'19)      |g ⊙ w|, g the loss gradient on a data batch; keep the largest
    GraSP    (Wang et al. ICLR'20)     S = -w ⊙ Hg with logits / T (T = 200); keep the smallest S
                                       (the paper removes the largest: those whose removal least
                                       reduces gradient flow)
    SynFlow  (Tanaka et al. NeurIPS'20) data-free: R = 1ᵀ f(1) of the network with |w|, score
                                       |∂R/∂w ⊙ w|, pruned over 100 rounds to density (d/D)^(k/100),
                                       in float64 (avoids layer collapse)
    magnitude                          |w|, one shot, global

Functions take a subspaces.FlatModel (any torch model) and w (D,); they never change the model's
buffers (BatchNorm statistics are copied). Scores are (D,); masks (d,) kept coordinates, sorted.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import Tensor

from baselines.pruning import keep_top
from subspaces.flat import FlatModel

GRASP_TEMPERATURE = 200.0
SYNFLOW_ROUNDS = 100


def _buffers(flat: FlatModel, dtype=None) -> dict[str, Tensor] | None:
    own = dict(flat.module.named_buffers())
    if not own:
        return None
    return {n: b.detach().clone().to(dtype) if dtype is not None and b.is_floating_point() else b.detach().clone()
            for n, b in own.items()}


def snip_scores(flat: FlatModel, w: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """|∂L/∂w ⊙ w| on the batch (x, y): the connection sensitivity. (D,)"""
    w = w.detach().clone().requires_grad_(True)
    loss = F.cross_entropy(flat(w, x, _buffers(flat)), y)
    (g,) = torch.autograd.grad(loss, w)
    return (g * w).detach().abs()


def grasp_scores(flat: FlatModel, w: Tensor, x: Tensor, y: Tensor, temperature: float = GRASP_TEMPERATURE) -> Tensor:
    """S = -w ⊙ (H g) with the loss of logits / temperature on (x, y); g is held constant. (D,)"""
    w = w.detach().clone().requires_grad_(True)
    loss = lambda: F.cross_entropy(flat(w, x, _buffers(flat)) / temperature, y)
    (g,) = torch.autograd.grad(loss(), w)
    (g_graph,) = torch.autograd.grad(loss(), w, create_graph=True)
    (hg,) = torch.autograd.grad((g_graph * g.detach()).sum(), w)
    return -(w.detach() * hg)


@contextlib.contextmanager
def _eval(module: torch.nn.Module):
    was = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was)


def synflow_scores(flat: FlatModel, w: Tensor, input_shape: tuple[int, ...], mask: Tensor | None = None) -> Tensor:
    """|∂R/∂w ⊙ w| for R = 1ᵀ f(1; |w| ⊙ mask) in float64, in eval mode. (D,) float64."""
    v = w.detach().double().abs()
    if mask is not None:
        v = v * mask
    v.requires_grad_(True)
    ones = torch.ones((1, *input_shape), dtype=torch.float64, device=w.device)
    with _eval(flat.module):
        R = flat(v, ones, _buffers(flat, torch.float64)).sum()
    (g,) = torch.autograd.grad(R, v)
    return (g * v).detach().abs()


def synflow_mask(flat: FlatModel, w: Tensor, d: int, input_shape: tuple[int, ...],
                 prunable: Tensor | None = None, rounds: int = SYNFLOW_ROUNDS) -> Tensor:
    """Iterative SynFlow: `rounds` rescorings, keeping D (d/D)^(k/rounds) after round k; exactly d at the end."""
    D = w.numel()
    mask = torch.ones(D, dtype=torch.float64, device=w.device)
    for k in range(1, rounds + 1):
        count = d if k == rounds else max(d, round(D * (d / D) ** (k / rounds)))
        score = synflow_scores(flat, w, input_shape, mask).masked_fill(mask == 0, -1.0)  # pruned stay pruned
        kept = keep_top(score, count, prunable)
        mask = torch.zeros_like(mask)
        mask[kept] = 1.0
    return kept


def magnitude_scores(w: Tensor) -> Tensor:
    """|w|. (D,)"""
    return w.detach().abs()
