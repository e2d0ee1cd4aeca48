"""Any torch model replaced by its first-order Taylor expansion at the weights it has when wrapped:

    f_lin(w; x) = f(w0; x) + J(w0; x) (w − w0),       J = ∂f/∂w at w0

computed with one forward-mode product per call (torch.func.jvp), never a stored J. The wrapper has the
same trainable parameters, under the same names behind `base.`, so FlatModel, every subspace and the
training loop treat it as any model of D weights (w (D,), W (K, D) with vmap); w0 is a frozen copy of the
model (`anchor`, requires_grad off, so it is not counted in D and moves with .to()). Under a squared loss
its loss is exactly the quadratic of subspaces/theory/linearized.py (the NTK regime).

The expansion point is the wrapped model's weights, not the w a caller starts from: a harness that takes
each seed's w0 from a freshly built module (as `run` does) must build the base under one fixed seed, or a
member starting at its own w0 is linearized around another point.

A training step costs a few of the network's: 2.6x for a 100x2 MLP at batch 128 on one CPU thread
(measured while another job shared the 2-core machine; the jvp carries a tangent through every layer).
Buffers (BatchNorm statistics) are the model's own and follow its mode; linearize a model in eval mode to
keep them fixed, as the theory does.
"""
from __future__ import annotations

import copy
import functools

from torch import Tensor, nn
from torch.func import functional_call, jvp


class LinearizedNetwork(nn.Module):
    """f_lin(w; x) for `base` (any nn.Module): x (B, ...) -> (B, outputs), linear in base's parameters w.

    At construction w = w0; training then moves `base`'s parameters (or a FlatModel's w) and never `anchor`."""

    def __init__(self, base: nn.Module):
        super().__init__()
        self.base = base
        self.anchor = copy.deepcopy(base).requires_grad_(False)
        self.names = tuple(n for n, p in base.named_parameters() if p.requires_grad)

    def forward(self, x: Tensor) -> Tensor:
        # The parameters as they are now: inside functional_call (FlatModel) these are slices of w.
        w = {n: functools.reduce(getattr, n.split("."), self.base) for n in self.names}
        w0 = {n: p for n, p in self.anchor.named_parameters() if n in w}
        out, change = jvp(lambda p: functional_call(self.base, p, (x,)), (w0,), ({n: w[n] - w0[n] for n in self.names},))
        return out + change
