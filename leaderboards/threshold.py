"""Threshold dimensions: how far each method compresses before it fails.

d*90 (Li et al. 2018): the smallest d whose seed-mean test accuracy reaches 90% of the full
network's, interpolated in log d between the two tested dimensions that bracket the crossing.
P_s(d, eps) and d*(eps) (Larsen et al. 2022): the fraction of seeds whose training accuracy reaches
eps at dimension d, and the smallest tested d where that fraction is at least 1 - delta.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np


def crossing(ds: list[float], accs: list[float], target: float) -> float | None:
    """Smallest d where accuracy first reaches `target`, scanning d upwards; log-linear interpolation.

    ds ascending; non-finite accuracies (every seed failed) are skipped. Returns the smallest d when
    it already reaches the target (the true threshold is at most that), None when no tested d does. A curve that is non-monotone in d uses its first
    upward crossing, so a later dip does not move the threshold.
    """
    points = [(d, a) for d, a in zip(ds, accs) if math.isfinite(a)]  # a d where every seed failed says nothing
    for i, (d, a) in enumerate(points):
        if a >= target:
            if i == 0:
                return float(d)
            d0, a0 = points[i - 1]
            frac = (target - a0) / (a - a0)
            return float(math.exp(math.log(d0) + frac * (math.log(d) - math.log(d0))))
    return None


@dataclass(frozen=True)
class Threshold:
    d: float | None  # None: not reached at any tested d
    low: float | None  # bootstrap interval over seeds (None bound: not reached in that share of resamples)
    high: float | None
    target: float  # the accuracy it had to reach
    upper_bound: bool = False  # reached already at the smallest tested d: the true d* is at most d


def dstar(
    acc: np.ndarray, ds: list[float], full_acc: np.ndarray, fraction: float = 0.9,
    n_boot: int = 1000, seed: int = 0, level: float = 0.95,
) -> Threshold:
    """d*_{fraction} with a bootstrap interval.

    acc: (S, n_d) test accuracy per seed (rows) and tested d (columns, ascending ds), NaN when a
    member failed. full_acc: (S_full,) the full network's accuracy per seed. Seeds are resampled with
    replacement, jointly across d (a seed's curve stays whole), and the full baseline independently.
    """
    acc = np.asarray(acc, dtype=float)
    full_acc = np.asarray(full_acc, dtype=float)
    target = fraction * float(np.nanmean(full_acc))
    point = crossing(ds, list(np.nanmean(acc, axis=0)), target)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        rows = acc[rng.integers(0, len(acc), len(acc))]
        base = full_acc[rng.integers(0, len(full_acc), len(full_acc))]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a d where every resampled seed failed
            means = np.nanmean(rows, axis=0)
        c = crossing(ds, list(means), fraction * float(np.nanmean(base)))
        boots.append(math.inf if c is None else c)
    # No interpolation between resamples: an "inf" (not reached) bound stays inf, not NaN.
    lo, hi = np.quantile(boots, [(1 - level) / 2, 1 - (1 - level) / 2], method="inverted_cdf")
    as_opt = lambda v: None if not math.isfinite(v) else float(v)
    return Threshold(point, as_opt(lo), as_opt(hi), target, upper_bound=point is not None and point <= min(ds))


def success_probability(train_acc: np.ndarray, eps: list[float]) -> np.ndarray:
    """P_s over seeds: train_acc (S, n_d), NaN for failed members (they count as failures) -> (n_eps, n_d)."""
    a = np.nan_to_num(np.asarray(train_acc, dtype=float), nan=-np.inf)
    return np.stack([(a >= e).mean(axis=0) for e in eps])


def threshold_training_dimension(ps: np.ndarray, ds: list[float], delta: float = 0.5) -> list[float | None]:
    """d*(eps) per eps row of ps (n_eps, n_d): the smallest tested d with P_s >= 1 - delta, else None."""
    out = []
    for row in ps:
        hits = [d for d, p in zip(ds, row) if p >= 1 - delta - 1e-12]
        out.append(float(hits[0]) if hits else None)
    return out
