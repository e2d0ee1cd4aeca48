"""Curvature of a loss L(w) over a flat weight vector w (D,), with torch.func: the change a displacement
δ makes, and the Hessian's trace.

    L(w + δ) − L(w) ≈ gᵀδ + ½ δᵀHδ          g = ∇L(w), H = ∇²L(w)   (quadratic_change)
    tr H ≈ mean_m v_mᵀ H v_m,  v_m Rademacher (Hutchinson 1989)        (hutchinson_trace)

Each Hessian-vector product is one forward-over-reverse pass (jvp of grad): never a D x D matrix.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor
from torch.func import grad, jvp

Loss = Callable[[Tensor], Tensor]  # w (D,) -> scalar


def hvp(loss: Loss, w: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    """(g, Hv): the gradient at w and the Hessian-vector product with v, both (D,)."""
    return jvp(grad(loss), (w,), (v,))


def quadratic_change(loss: Loss, w: Tensor, delta: Tensor) -> tuple[float, float]:
    """(gᵀδ, ½ δᵀHδ): the first- and second-order terms of L(w + δ) − L(w)."""
    g, h_delta = hvp(loss, w, delta)
    return float(g @ delta), 0.5 * float(delta @ h_delta)


def hutchinson_trace(loss: Loss, w: Tensor, probes: int, seed: int) -> tuple[float, float]:
    """(estimate, standard error) of tr ∇²L(w) from `probes` Rademacher vectors (seeded, any device)."""
    if probes < 2:
        raise ValueError(f"probes={probes}: need at least 2 for a standard error")
    g = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(probes):
        v = (torch.randint(0, 2, w.shape, generator=g) * 2 - 1).to(w)
        values.append(float(v @ hvp(loss, w, v)[1]))
    mean = sum(values) / probes
    sd = math.sqrt(sum((x - mean) ** 2 for x in values) / (probes - 1))
    return mean, sd / math.sqrt(probes)
