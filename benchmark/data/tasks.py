"""K tasks on one input space: permuted inputs (Goodfellow et al. 2013's permuted MNIST).

Task i applies its own fixed random permutation π_i to the input positions of every example (task 0 is
the identity, i.e. the dataset itself); labels are unchanged. The permutation lives in the model as a
per-member buffer (`Permuted`), so a population trains K tasks in one batched step, each member on its
own task, from one copy of the data.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from benchmark.core.seeds import derive_seed
from benchmark.data.splits import Splits


class Permuted(nn.Module):
    """net after a permutation of the input positions: x (B, *shape) -> net(x.flatten(1)[:, perm] reshaped).

    `perm` is a buffer, so per-member copies (FlatModel.init_buffers) give each member its own task; it
    adds no parameters, and with the identity it is `net` exactly."""

    def __init__(self, net: nn.Module, input_shape: tuple[int, ...]):
        super().__init__()
        self.net = net
        self.register_buffer("perm", torch.arange(math.prod(input_shape)))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1).index_select(1, self.perm).view(x.shape))


def permutations(n: int, K: int, seed: int) -> Tensor:
    """(K, n) long: task 0 the identity, task i > 0 a permutation seeded by (seed, "task", i)."""
    rows = [torch.arange(n)]
    for i in range(1, K):
        rows.append(torch.randperm(n, generator=torch.Generator().manual_seed(derive_seed(seed, "task", i))))
    return torch.stack(rows)


def task_buffers(buffers: dict[str, Tensor] | None, perms: Tensor) -> dict[str, Tensor]:
    """Per-member buffers (FlatModel.init_buffers, K members) with member k on task perms[k]: (K, n)."""
    out = dict(buffers or {})
    out["perm"] = perms.to(out["perm"].device if "perm" in out else perms.device)
    return out


def permuted(data: Splits, perm: Tensor) -> Splits:
    """Every split with its inputs' positions under perm (n,): one permuted task as a dataset."""
    move = lambda x: x.flatten(1)[:, perm.to(x.device)].view(x.shape)
    return Splits(f"{data.name}-permuted", move(data.x_train), data.y_train, move(data.x_val), data.y_val,
                  move(data.x_test), data.y_test, data.num_classes)


def mixture(data: Splits, perms: Tensor, seed: int) -> Splits:
    """The training split with each example under one task drawn at random (seeded) from perms (T, n):
    the data of a warm-up on all tasks. Validation and test stay task 0's (they are not read for it)."""
    g = torch.Generator().manual_seed(derive_seed(seed, "task_mixture"))
    task = torch.randint(0, len(perms), (len(data.y_train),), generator=g)
    flat = data.x_train.flatten(1)
    idx = perms.to(flat.device)[task.to(flat.device)]  # (N, n): each example's permutation
    x = flat.gather(1, idx).view(data.x_train.shape)
    return Splits(f"{data.name}-mixture", x, data.y_train, data.x_val, data.y_val, data.x_test, data.y_test,
                  data.num_classes)
