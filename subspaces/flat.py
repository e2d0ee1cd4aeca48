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
    buffer_names: tuple[str, ...] = ()  # state that is not trained (BatchNorm running statistics)

    @classmethod
    def of(cls, module: nn.Module) -> "FlatModel":
        names, shapes, slices, start = [], [], [], 0
        for name, p in module.named_parameters():
            if p.requires_grad:
                names.append(name)
                shapes.append(p.shape)
                slices.append(slice(start, start + p.numel()))
                start += p.numel()
        buffers = tuple(name for name, _ in module.named_buffers())
        return cls(module, tuple(names), tuple(shapes), tuple(slices), buffers)

    def init_buffers(self, K: int, device: torch.device | str | None = None) -> dict[str, Tensor] | None:
        """Per-member copies of the module's buffers, (K, ...) each; None for a model without any.

        Each member keeps its own BatchNorm running statistics, updated in place during training."""
        if not self.buffer_names:
            return None
        own = dict(self.module.named_buffers())
        return {n: own[n].detach().to(device or own[n].device).unsqueeze(0).repeat(K, *[1] * own[n].dim())
                for n in self.buffer_names}

    @property
    def D(self) -> int:
        return self.slices[-1].stop if self.slices else 0

    def flatten(self) -> Tensor:
        """The module's current parameters as w (D,)."""
        params = dict(self.module.named_parameters())
        return torch.cat([params[n].detach().reshape(-1) for n in self.names])

    def unflatten(self, w: Tensor) -> dict[str, Tensor]:
        """w (D,) -> {name: view of w with the parameter's shape}.

        One split, not a slice per parameter: autograd then joins the parameters' gradients with one
        concatenation instead of writing each into its own zero-filled (D,) vector (a slice's backward),
        which cost a LeNet-300-100 step 30% (measured on CPU)."""
        parts = w.split([s.stop - s.start for s in self.slices])
        return {n: t.view(shape) for n, t, shape in zip(self.names, parts, self.shapes)}

    def __call__(self, w: Tensor, x: Tensor, buffers: dict[str, Tensor] | None = None) -> Tensor:
        """w (D,), x (B, ...) -> logits (B, classes). buffers: this member's, updated in place in train mode."""
        state = self.unflatten(w) if buffers is None else (self.unflatten(w), buffers)
        return functional_call(self.module, state, (x,))

    def batched(self, W: Tensor, x: Tensor, shared_input: bool, buffers: dict[str, Tensor] | None = None) -> Tensor:
        """W (K, D) -> logits (K, B, classes); x is (B, ...) when shared_input else (K, B, ...).
        buffers: {name: (K, ...)}, one set per member (see init_buffers).

        Runs the members with torch.func.vmap; a model that vmap cannot run (data-dependent control
        flow, in-place updates of unbatched state, ...) runs member by member, with one warning.
        One member runs without vmap: the same maths, without vmap's per-operator dispatch.
        """
        x_dim = None if shared_input else 0
        if W.shape[0] > 1 and self.module not in _NO_VMAP:
            try:
                return vmap(self, in_dims=(0, x_dim, 0 if buffers is not None else None))(W, x, buffers)
            except (RuntimeError, NotImplementedError) as e:
                if "vmap" not in str(e) and "Batched" not in str(e) and "batched" not in str(e):
                    raise
                _NO_VMAP.add(self.module)
                warnings.warn(f"{type(self.module).__name__} cannot run under torch.func.vmap "
                              f"({str(e).splitlines()[0][:200]}); training its members one at a time")
        member = lambda k: None if buffers is None else {n: b[k] for n, b in buffers.items()}
        if W.shape[0] == 1:  # squeeze, not W[0]: its backward is a view, not a zero-filled (1, D) copy
            return self(W.squeeze(0), x if shared_input else x[0], member(0)).unsqueeze(0)
        return torch.stack([self(W[k], x if shared_input else x[k], member(k)) for k in range(W.shape[0])])


# Modules that failed under vmap once: go straight to the member-by-member path.
_NO_VMAP: "weakref.WeakSet[nn.Module]" = weakref.WeakSet()
