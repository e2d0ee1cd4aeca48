"""A model as a pure function of one flat weight vector w (D,), run with torch.func.functional_call."""
from __future__ import annotations

import warnings
import weakref
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap


@dataclass(frozen=True)
class FlatModel:
    """module's trainable parameters, flattened in `named_parameters` order.

    D counts every trainable scalar. `slices[i]` is where parameter `names[i]` sits in w.
    """

    module: nn.Module
    names: tuple[str, ...]
    shapes: tuple[torch.Size, ...]
    slices: tuple[slice, ...]

    @classmethod
    def of(cls, module: nn.Module) -> "FlatModel":
        names, shapes, slices, start = [], [], [], 0
        for name, p in module.named_parameters():
            if p.requires_grad:
                names.append(name)
                shapes.append(p.shape)
                slices.append(slice(start, start + p.numel()))
                start += p.numel()
        return cls(module, tuple(names), tuple(shapes), tuple(slices))

    @property
    def D(self) -> int:
        return self.slices[-1].stop if self.slices else 0

    def flatten(self) -> Tensor:
        """The module's current parameters as w (D,)."""
        params = dict(self.module.named_parameters())
        return torch.cat([params[n].detach().reshape(-1) for n in self.names])

    def unflatten(self, w: Tensor) -> dict[str, Tensor]:
        """w (D,) -> {name: view of w with the parameter's shape}."""
        return {n: w[s].view(shape) for n, s, shape in zip(self.names, self.slices, self.shapes)}

    def __call__(self, w: Tensor, x: Tensor) -> Tensor:
        """w (D,), x (B, ...) -> logits (B, classes)."""
        return functional_call(self.module, self.unflatten(w), (x,))

    def batched(self, W: Tensor, x: Tensor, shared_input: bool) -> Tensor:
        """W (K, D) -> logits (K, B, classes); x is (B, ...) when shared_input else (K, B, ...).

        Runs the members with torch.func.vmap; a model that vmap cannot run (data-dependent control
        flow, in-place updates of unbatched state, ...) runs member by member, with one warning.
        """
        if self.module not in _NO_VMAP:
            try:
                return vmap(self, in_dims=(0, None if shared_input else 0))(W, x)
            except (RuntimeError, NotImplementedError) as e:
                if "vmap" not in str(e) and "Batched" not in str(e) and "batched" not in str(e):
                    raise
                _NO_VMAP.add(self.module)
                warnings.warn(f"{type(self.module).__name__} cannot run under torch.func.vmap "
                              f"({str(e).splitlines()[0][:200]}); training its members one at a time")
        return torch.stack([self(W[k], x if shared_input else x[k]) for k in range(W.shape[0])])


# Modules that failed under vmap once: go straight to the member-by-member path.
_NO_VMAP: "weakref.WeakSet[nn.Module]" = weakref.WeakSet()
