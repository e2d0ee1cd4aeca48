"""Any torch model trained inside a subspace with the user's own loop: an nn.Module whose only
trainable parameter is θ (d,), running the model at w = b + A θ.

    wrapped = SubspaceModule(model, d=500, projection="fastfood", seed=0)
    opt = torch.optim.SGD(wrapped.parameters(), lr=0.1)
    loss = F.cross_entropy(wrapped(x), y); loss.backward(); opt.step()

b is the model's current weights (K = 1 member); A a random projection by name (or any Projection
with K = 1). The model's own parameters are frozen (requires_grad=False): they are b. The wrapped model's buffers (BatchNorm running statistics) are used and updated as in
the model itself, following the wrapper's train()/eval() mode.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from subspaces.core import Projection, Subspace
from subspaces.flat import FlatModel
from subspaces.random import random_projection


class SubspaceModule(nn.Module):
    def __init__(self, model: nn.Module, d: int | None = None, projection: str | Projection = "auto",
                 seed: int = 0):
        super().__init__()
        self.flat = FlatModel.of(model)
        for p in model.parameters():  # θ is the only parameter an optimizer should see
            p.requires_grad_(False)
        self.model = model
        D = self.flat.D
        if isinstance(projection, str):
            if d is None or not 1 <= d <= D:
                raise ValueError(f"d must be in [1, D={D}] for projection {projection!r}, got {d}")
            projection = random_projection(projection, D, d, seed)
        if projection.K != 1 or projection.D != D:
            raise ValueError(f"projection must have K = 1 and D = {D}, got K = {projection.K}, D = {projection.D}")
        offset = self.flat.flatten().detach().clone()[None]
        self.subspace = Subspace(offset, projection.to(offset.device))
        self.theta = nn.Parameter(torch.zeros(projection.d, device=offset.device))

    @property
    def d(self) -> int:
        return self.theta.numel()

    @property
    def D(self) -> int:
        return self.flat.D

    def weights(self) -> Tensor:
        """w = b + A θ, (D,)."""
        return self.subspace.weights(self.theta[None])[0]

    def forward(self, x: Tensor) -> Tensor:
        buffers = dict(self.model.named_buffers()) or None  # in place, as the model's own forward would
        return self.flat(self.weights(), x, buffers)

    def _apply(self, fn, *args, **kwargs):
        # .to(device) / .double() move θ and the model; the subspace (b and A) follows θ's device.
        super()._apply(fn, *args, **kwargs)
        self.subspace = self.subspace.to(self.theta.device)
        return self

    def train(self, mode: bool = True) -> "SubspaceModule":
        super().train(mode)
        self.model.train(mode)
        return self
