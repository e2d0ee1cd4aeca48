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
    return _round_exact([total * s / n for s in sizes], sizes, total)


def _round_exact(quotas: list[float], caps: list[int], total: int) -> list[int]:
    """Integers near `quotas`, each at most its cap, summing exactly to total: floors, then one more to
    the largest remainders (cycling while some group still has room)."""
    counts = [min(math.floor(q), c) for q, c in zip(quotas, caps)]
    order = sorted(range(len(caps)), key=lambda i: quotas[i] - counts[i], reverse=True)
    i = 0
    while sum(counts) < total:
        j = order[i % len(order)]
        if counts[j] < caps[j]:
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


def keep_top(score: Tensor, d: int, prunable: Tensor | None = None) -> Tensor:
    """Exactly d coordinates: every non-prunable one, then the largest scores among the prunable
    (ties to the lower index). score: (D,); prunable: (D,) bool or None (all). Returns (d,) long, sorted."""
    D = score.numel()
    fixed = 0 if prunable is None else int((~prunable).sum())
    if not max(1, fixed) <= d <= D:
        raise ValueError(f"d must be in [{max(1, fixed)}, D={D}] (non-prunable coordinates are always kept), got {d}")
    if prunable is None:
        return _stable_topk(score[None], d)[0].sort().values
    masked = score.masked_fill(~prunable, float("-inf"))
    top = _stable_topk(masked[None], d - fixed)[0]
    return torch.cat([top, (~prunable).nonzero()[:, 0]]).sort().values


def shuffle_within_layers(index: Tensor, layers: list[slice], seed: int) -> Tensor:
    """The same count of kept coordinates in every layer (slice of w), drawn uniformly within it.
    index: (d,) kept coordinates; returns (d,) long, sorted, with exactly the per-layer counts of index."""
    g = torch.Generator().manual_seed(seed)
    index = index.cpu()
    out = []
    for sl in layers:
        count = int(((index >= sl.start) & (index < sl.stop)).sum())
        if count:
            out.append(torch.randperm(sl.stop - sl.start, generator=g)[:count] + sl.start)
    kept = torch.cat(out).sort().values
    if kept.numel() != index.numel():
        raise ValueError(f"index has {index.numel()} coordinates but the layers hold {kept.numel()} of them")
    return kept


def erk_counts(shapes: list[tuple[int, ...]], d: int) -> list[int]:
    """Kept count per parameter tensor under Erdős–Rényi-Kernel densities (Evci et al. 2020), exactly d
    in total: density_l = ε (Σ dims_l)/(Π dims_l), capped at 1 (ε re-solved over the uncapped tensors),
    rounded by largest remainder. A 1-d tensor (a bias) has scale 1."""
    sizes = [math.prod(s) for s in shapes]
    D = sum(sizes)
    if not 1 <= d <= D:
        raise ValueError(f"d must be in [1, D={D}], got {d}")
    scale = [sum(s) / math.prod(s) for s in shapes]
    dense: set[int] = set()
    eps = 0.0
    while len(dense) < len(sizes):
        rest = d - sum(sizes[i] for i in dense)
        eps = rest / sum(sizes[i] * scale[i] for i in range(len(sizes)) if i not in dense)
        over = {i for i in range(len(sizes)) if i not in dense and eps * scale[i] >= 1}
        if not over:
            break
        dense |= over
    quotas = [float(sizes[i]) if i in dense else eps * scale[i] * sizes[i] for i in range(len(sizes))]
    return _round_exact(quotas, sizes, d)


def erk_coordinates(shapes: list[tuple[int, ...]], layers: list[slice], d: int, seed: int) -> Tensor:
    """Exactly d coordinates, erk_counts(shapes, d) of them uniformly at random within each layer. (d,) long, sorted."""
    g = torch.Generator().manual_seed(seed)
    out = [torch.randperm(sl.stop - sl.start, generator=g)[:k] + sl.start
           for sl, k in zip(layers, erk_counts(shapes, d)) if k]
    return torch.cat(out).sort().values
