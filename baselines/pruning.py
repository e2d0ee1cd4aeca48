"""Masks with an exact count: random, and by magnitude (global or per layer)."""
from __future__ import annotations

import math

import torch
from torch import Tensor


def random_coordinates(D: int, d: int, seed: int) -> Tensor:
    """Exactly d distinct coordinates of D, uniformly at random (not Bernoulli), sorted. (d,) long."""
    if not 1 <= d <= D:
        raise ValueError(f"d must be in [1, D={D}], got {d}")
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(D, generator=g)[:d].sort().values


def _largest_remainder(sizes: list[int], total: int) -> list[int]:
    """Split `total` over groups proportionally to `sizes`, integers summing exactly to total."""
    n = sum(sizes)
    quotas = [total * s / n for s in sizes]
    counts = [min(math.floor(q), s) for q, s in zip(quotas, sizes)]
    order = sorted(range(len(sizes)), key=lambda i: quotas[i] - counts[i], reverse=True)
    i = 0
    while sum(counts) < total:
        j = order[i % len(order)]
        if counts[j] < sizes[j]:
            counts[j] += 1
        i += 1
    return counts


def magnitude_keep(
    weights: Tensor,
    mask: Tensor,
    n_keep: int,
    prunable: Tensor | None = None,
    layers: list[slice] | None = None,
) -> Tensor:
    """New mask keeping exactly n_keep coordinates: the largest |w| among the currently kept ones.

    weights, mask: (K, D) (mask bool); prunable: (D,) bool, coordinates never pruned where False
    (they count toward n_keep, so the total stays exact over all D). layers: with per-layer scope,
    the slices of the flat vector that are ranked separately (each keeps its share of the prunable
    survivors, by largest remainder); None ranks globally. Ties break by coordinate index.
    Returns (K, D) bool with exactly n_keep True per row.
    """
    K, D = weights.shape
    if prunable is None:
        prunable = torch.ones(D, dtype=torch.bool, device=weights.device)
    fixed = (~prunable).sum().item()
    kept_now = mask.sum(dim=1)
    if not bool((kept_now >= n_keep).all()):
        raise ValueError(f"cannot keep {n_keep} coordinates: some members keep only {int(kept_now.min())}")
    if n_keep < fixed:
        raise ValueError(f"n_keep={n_keep} is below the {fixed} non-prunable coordinates")
    # Score: |w| on prunable kept coordinates, -inf on pruned ones; non-prunable always kept.
    score = weights.abs().masked_fill(~(mask & prunable), float("-inf"))
    new = (~prunable).expand(K, D).clone()
    budget = n_keep - fixed
    if layers is None:
        top = _stable_topk(score, budget)
        new.scatter_(1, top, True)
        return new
    for k in range(K):
        alive = [int((mask[k, sl] & prunable[sl]).sum()) for sl in layers]
        shares = _largest_remainder(alive, budget)
        for sl, share in zip(layers, shares):
            if share:
                top = _stable_topk(score[k : k + 1, sl], share)[0] + sl.start
                new[k, top] = True
    return new


def _stable_topk(score: Tensor, k: int) -> Tensor:
    """Indices of the k largest entries per row; ties go to the lower index (deterministic)."""
    order = torch.argsort(score, dim=1, descending=True, stable=True)
    return order[:, :k]


def prune_schedule(D: int, targets: list[int], fraction: float) -> list[int]:
    """Kept counts after each IMP round, from D down to min(targets), hitting every target exactly.

    Each round prunes at most `fraction` of the remaining coordinates (the last round before a
    target may prune less so that it lands on it). Returns the strictly decreasing counts, excluding D.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"prune fraction must be in (0, 1), got {fraction}")
    wanted = sorted({t for t in targets if t < D}, reverse=True)
    counts: list[int] = []
    current = D
    for t in wanted:
        while current > t:
            current = max(t, min(current - 1, math.ceil(current * (1 - fraction))))
            counts.append(current)
    return counts
