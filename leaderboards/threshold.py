"""Threshold dimensions: how far each method compresses before it fails.

d*90 (Li et al. 2018): the smallest d whose seed-mean test accuracy reaches 90% of the full
network's, interpolated in log d between the two tested dimensions that bracket the crossing.
P_s(d, eps) and d*(eps) (Larsen et al. 2022): the fraction of seeds whose training accuracy reaches
eps at dimension d, and the smallest tested d where that fraction is at least 1 - delta.

The 95% interval of d*90 is a Student-t interval on log d over per-seed thresholds, not a bootstrap:
a benchmark usually has 3 seeds, and resampling 3 seeds with replacement gives only 10 distinct
resamples, so percentile-bootstrap bounds land on a handful of values (often "[15, 15]") and
under-cover. Instead each seed's own threshold is `crossing` on that seed's curve with the same target
(90% of the seed-mean full accuracy, held fixed: the reference's own seed noise is not in the
interval), and the interval is exp(mean ± t_{0.975, k-1} · sd / sqrt(k)) of log d over the k seeds
whose curve reaches the target, clipped to the tested range (a clipped bound is open). Log d because
thresholds spread multiplicatively (the tested d form a geometric grid). A seed's threshold is
censored when it lies outside the tested range, and the bound on that side is then open:
  - a seed that already reaches the target at its smallest tested d has d* <= that d: it enters the
    mean at that d, its largest possible value, and the lower bound is open, shown as "≤ smallest d";
  - a seed that never reaches the target has d* above the largest tested d: it cannot enter the mean,
    and the upper bound is open ("not reached"); the lower bound is the t-bound of the seeds that reach.
With fewer than two seeds that reach there is no spread to estimate and both bounds are open; with a
single seed in all (n = 1) there is no interval at all. The point estimate stays the crossing of the
seed-mean curve. Per-seed thresholds are kept (Threshold.per_seed) for paired comparisons across
methods (`leaderboards.paired`): a seed shares its initialization and data order across methods.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import stats


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
    low: float | None  # 95% interval (module docstring); None: no interval (n = 1, or nothing reached)
    high: float | None  # None: open above (a seed never reaches the target), or no interval
    target: float  # the accuracy it had to reach
    upper_bound: bool = False  # reached already at the smallest tested d: the true d* is at most d
    n: int = 0  # seeds with a curve (at least one finite accuracy)
    # The lower bound is at most `low`: a seed reached at its smallest d, or the t-bound ran below the range.
    low_open: bool = False
    high_open: bool = False  # the upper bound is beyond `high`, or beyond the range when high is None
    # Per seed row of `acc`: bounds (lo, hi) on that seed's own d*: (c, c) crossed at c, (0, d_min)
    # reached at its smallest d, (d_max, inf) never reached, (nan, nan) no curve (every member failed).
    per_seed: tuple[tuple[float, float], ...] = field(default_factory=tuple)


def seed_bounds(acc_row: np.ndarray, ds: list[float], target: float) -> tuple[float, float]:
    """Bounds (lo, hi) on one seed's d* from its curve acc_row (n_d,): see Threshold.per_seed."""
    tested = [d for d, a in zip(ds, acc_row) if math.isfinite(a)]
    if not tested:
        return (math.nan, math.nan)
    c = crossing(ds, list(acc_row), target)
    if c is None:
        return (float(tested[-1]), math.inf)
    if c <= tested[0]:
        return (0.0, float(tested[0]))  # d* is somewhere at or below the first tested d
    return (c, c)


def t_interval_log(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Student-t interval (df = k-1) of the mean of log(values), back-transformed; values (k,), k >= 2."""
    logs = np.log(np.asarray(values, dtype=float))
    half = stats.t.ppf(0.5 + level / 2, len(logs) - 1) * logs.std(ddof=1) / math.sqrt(len(logs))
    return float(math.exp(logs.mean() - half)), float(math.exp(logs.mean() + half))


def seed_interval(bounds: np.ndarray, ds: list[float], level: float = 0.95):
    """(low, high, low_open, high_open) from per-seed bounds (S, 2) (rows without a curve dropped).

    Crossing seeds enter the t-interval at their crossing, seeds reached at their smallest d at that d
    (their largest possible d*; the lower bound opens); unreached seeds only open the upper bound.
    The interval is clipped to the tested range [min(ds), max(ds)]; a bound that had to be clipped is
    open too.
    """
    lo_range, hi_range = float(min(ds)), float(max(ds))
    reached = bounds[np.isfinite(bounds[:, 1])]
    edge = bool((reached[:, 0] == 0).any())  # a seed reached already at its smallest tested d
    unreached = bool(np.isinf(bounds[:, 1]).any())
    if len(reached) == 0:
        return None, None, False, True  # no seed reaches: nothing to bound (the point is "not reached" too)
    if len(reached) < 2:
        return lo_range, None if unreached else hi_range, True, True  # one value, no spread: both open
    low, high = t_interval_log(reached[:, 1], level)
    low_open = edge or low < lo_range
    high_open = unreached or high > hi_range
    low = lo_range if edge else max(low, lo_range)  # an edge seed's d* may lie anywhere below the range
    return low, None if unreached else min(high, hi_range), low_open, high_open


def dstar(acc: np.ndarray, ds: list[float], full_acc: np.ndarray, fraction: float = 0.9,
          level: float = 0.95) -> Threshold:
    """d*_{fraction}: the crossing of the seed-mean curve, with a Student-t interval over per-seed d*.

    acc: (S, n_d) test accuracy per seed (rows) and tested d (columns, ascending ds), NaN when a
    member failed. full_acc: (S_full,) the full network's accuracy per seed; the target is `fraction`
    of its mean, the same for the seed-mean curve and for every seed's own curve.
    """
    acc = np.asarray(acc, dtype=float)
    target = fraction * float(np.nanmean(np.asarray(full_acc, dtype=float)))
    finite_rows = np.isfinite(acc).any(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a d where every seed failed: NaN, skipped by crossing
        point = crossing(ds, list(np.nanmean(acc, axis=0)), target)
    per_seed = tuple(seed_bounds(row, ds, target) for row in acc)
    bounds = np.array(per_seed, dtype=float).reshape(-1, 2)[finite_rows]
    n = len(bounds)
    upper_bound = point is not None and point <= min(ds)
    if n < 2:  # one seed: no spread, no interval (the table says "n = 1")
        return Threshold(point, None, None, target, upper_bound, n, per_seed=per_seed)
    low, high, low_open, high_open = seed_interval(bounds, ds, level)
    return Threshold(point, low, high, target, upper_bound, n, low_open, high_open, per_seed)


def format_threshold(t: Threshold, n_table: int | None = None) -> str:
    """A d*90 cell: 'point [low, high]', open bounds as '≤ low' / '≥ high' / 'not reached', and
    '(n = k)' when the threshold rests on another number of seeds than the table's n_table; no
    interval with one seed ('n = 1'), none either when the seed-mean curve does not reach the target."""
    fmt = lambda v: f"{v:,.0f}"
    if t.d is None:  # the seed-mean curve misses; say how many seeds' own curves reach it
        k = sum(math.isfinite(hi) for _, hi in t.per_seed)
        return "not reached" + (f" ({k} of {t.n} seeds reach it)" if k else "")
    cell = f"{'≤ ' if t.upper_bound else ''}{fmt(t.d)}"
    if t.n < 2:
        return cell + f" (n = {t.n}, no interval)"
    low = "-" if t.low is None else f"{'≤ ' if t.low_open else ''}{fmt(t.low)}"
    high = "not reached" if t.high is None else f"{'≥ ' if t.high_open else ''}{fmt(t.high)}"
    return cell + f" [{low}, {high}]" + (f" (n = {t.n})" if n_table is not None and t.n != n_table else "")


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
