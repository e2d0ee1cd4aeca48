"""Lottery tickets: iterative magnitude pruning with rewinding (Frankle & Carbin 2019; Frankle et al. 2020)."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from baselines.pruning import magnitude_keep, prune_schedule

# train(mask (K, D) bool) -> trained weights (K, D): trains each member from its rewind point
# with only the masked coordinates free (and pruned ones held at 0).
TrainFn = Callable[[Tensor], Tensor]


def iterative_magnitude_pruning(
    train: TrainFn,
    K: int,
    D: int,
    targets: list[int],
    fraction: float = 0.2,
    prunable: Tensor | None = None,
    layers: list[slice] | None = None,
    device: torch.device | str = "cpu",
    on_round: Callable[[int, int], None] | None = None,
) -> tuple[dict[int, Tensor], dict[int, int]]:
    """IMP for K members at once, one schedule that lands exactly on every target count.

    Each round trains the current mask (from the rewind point), then keeps the largest-magnitude
    survivors down to the next count of `prune_schedule`. One sequence serves every target.
    Returns (masks, rounds): masks[d] is (K, D) bool with exactly d True per row, rounds[d] the
    number of training runs that produced it (its preparation cost is rounds[d] trainings).
    """
    mask = torch.ones(K, D, dtype=torch.bool, device=device)
    masks: dict[int, Tensor] = {}
    rounds: dict[int, int] = {}
    wanted = set(targets)
    if D in wanted:
        masks[D], rounds[D] = mask.clone(), 0
    schedule = prune_schedule(D, targets, fraction)
    for i, count in enumerate(schedule, start=1):
        trained = train(mask)
        mask = magnitude_keep(trained, mask, count, prunable, layers)
        if on_round is not None:
            on_round(i, count)
        if count in wanted:
            masks[count], rounds[count] = mask.clone(), i
    return masks, rounds
