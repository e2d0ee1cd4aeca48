"""Paired per-seed comparisons between methods: is A's d*90 (or accuracy) really below B's?

Members with the same seed share their initialization and data order across methods, so two methods
are compared seed by seed: the per-seed differences cancel what the seeds have in common, and their
own spread (not each method's spread over seeds) sets a Student-t 95% interval, df = n - 1, over the
n seeds both methods have. A verdict names an ordering only when the interval excludes 0
("A < B (CI excludes 0)"); otherwise it says "not resolved at n = 3": with 3 seeds t_{0.975, 2} = 4.30,
so only differences large against their seed-to-seed spread resolve.

(a) test accuracy at one ratio: acc_a - acc_b per seed.
(b) d*90: log10 d*_a - log10 d*_b per seed (a factor 10**diff: "A needs 0.4x B's d"), from each
method's per-seed thresholds (`threshold.Threshold.per_seed`, bounds (lo, hi) per seed). A seed whose
threshold lies outside the tested range is censored and only bounds its difference:
  - every seed has both thresholds: two-sided;
  - some seeds only bound their difference, all on the same side (say A reaches at d = 100 and B never
    does, so diff <= log10 100 - log10 d_max): one-sided. Each such seed enters at its bound (the
    usual detection-limit substitution), so the mean is a bound on the mean difference, and only the
    interval's bound on that side is reported (the other is open);
  - a seed bounded on neither side (neither method reaches the target, or both reach it already at the
    smallest tested d), or seeds bounded on opposite sides: undetermined, no interval.
Pure functions on arrays; the leaderboard glue is `adjacent` (each method vs the next in a ranking).
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

TWO_SIDED, UPPER, LOWER, UNDETERMINED = "two-sided", "upper", "lower", "undetermined"


@dataclass(frozen=True)
class Paired:
    mean: float  # mean per-seed difference a - b (one-sided: a bound on it, on the side of the interval)
    low: float  # 95% interval; -inf when open below (sided "upper"); nan when there is none (n < 2, undetermined)
    high: float  # +inf when open above (sided "lower")
    n: int  # seeds where both methods have a value
    sided: str = TWO_SIDED  # TWO_SIDED, UPPER (only an upper bound is known), LOWER, UNDETERMINED
    censored: int = 0  # seeds whose difference is only bounded
    note: str = ""  # why undetermined


@dataclass(frozen=True)
class Comparison:
    a: str
    b: str
    quantity: str  # "log10_dstar90" or "test_acc"
    ratio: float | None  # D/d of an accuracy comparison; None for d*90
    result: Paired


def t_interval(x: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of x (k,): Student-t interval, df = k - 1; (mean, nan, nan) when k < 2."""
    x = np.asarray(x, dtype=float)
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if len(x) < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return mean, mean - half, mean + half


def paired_difference(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> Paired:
    """a - b seed by seed: a, b (S,) over the same seeds (row s = seed s in both), NaN where missing
    (a failed member): such seeds drop out of both, so the pairing stays intact."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    both = np.isfinite(a) & np.isfinite(b)
    mean, low, high = t_interval(a[both] - b[both], level)
    return Paired(mean, low, high, int(both.sum()))


def log_difference_bounds(bounds_a: np.ndarray, bounds_b: np.ndarray) -> np.ndarray:
    """Bounds on log10 d*_a - log10 d*_b per seed: bounds_a, bounds_b (S, 2) of (lo, hi) on each seed's
    d* (0 and inf for open ends, NaN rows where a method has no curve) -> (S, 2), -inf/+inf open."""
    with np.errstate(divide="ignore"):  # log10(0) = -inf: a threshold known only from above
        la, lb = np.log10(np.asarray(bounds_a, dtype=float)), np.log10(np.asarray(bounds_b, dtype=float))
    return np.stack([la[:, 0] - lb[:, 1], la[:, 1] - lb[:, 0]], axis=1)


def paired_log_threshold(bounds_a: np.ndarray, bounds_b: np.ndarray, level: float = 0.95) -> Paired:
    """log10 d*_a - log10 d*_b seed by seed, from per-seed bounds (S, 2) of each method
    (`Threshold.per_seed`); censored seeds make it one-sided or undetermined (module docstring)."""
    diff = log_difference_bounds(bounds_a, bounds_b)
    diff = diff[~np.isnan(diff).any(axis=1)]  # a seed one of the methods has no curve for
    n = len(diff)
    lo_known, hi_known = np.isfinite(diff[:, 0]), np.isfinite(diff[:, 1])
    exact = lo_known & hi_known
    censored = int(n - exact.sum())
    if n == 0:
        return Paired(math.nan, math.nan, math.nan, 0, UNDETERMINED, note="no seed has both methods")
    if not censored:
        mean, low, high = t_interval(diff[:, 0], level)
        return Paired(mean, low, high, n)
    neither = int((~lo_known & ~hi_known).sum())
    if neither:
        return Paired(math.nan, math.nan, math.nan, n, UNDETERMINED, censored,
                      f"{neither} of {n} seeds bound neither way (neither method reaches the target, "
                      f"or both reach it at the smallest tested d)")
    if (hi_known & ~lo_known).any() and (lo_known & ~hi_known).any():
        return Paired(math.nan, math.nan, math.nan, n, UNDETERMINED, censored,
                      "seeds censored on opposite sides")
    side = UPPER if hi_known.all() else LOWER  # every censored seed is bounded on this side
    mean, low, high = t_interval(diff[:, 1] if side == UPPER else diff[:, 0], level)
    return Paired(mean, -math.inf if side == UPPER else low, high if side == UPPER else math.inf,
                  n, side, censored)


def factor(p: Paired) -> tuple[float, float, float]:
    """A log10 difference as a ratio of d*: (10**mean, 10**low, 10**high); open ends 0 and inf."""
    return tuple(10.0 ** v if math.isfinite(v) else (0.0 if v == -math.inf else v) for v in (p.mean, p.low, p.high))


def verdict(p: Paired, a: str, b: str) -> str:
    """'A < B (CI excludes 0)', 'A > B (...)', 'not resolved at n = k', or 'undetermined: why'."""
    if p.sided == UNDETERMINED:
        return f"undetermined: {p.note}"
    one_sided = f"one-sided, {p.censored} of {p.n} seeds censored; " if p.sided != TWO_SIDED else ""
    if p.high < 0:
        return f"{a} < {b} ({one_sided}CI excludes 0)"
    if p.low > 0:
        return f"{a} > {b} ({one_sided}CI excludes 0)"
    return f"not resolved at n = {p.n}" + (f" ({one_sided.rstrip('; ')})" if one_sided else "")


def adjacent(order: list[str], bounds: dict[str, np.ndarray], accs: dict[str, dict[float, np.ndarray]],
             level: float = 0.95) -> list[Comparison]:
    """Each method vs the next in `order` (a ranking): d*90 from bounds (method -> (S, 2) per-seed
    bounds), then test accuracy at every ratio both have (accs: method -> ratio -> (S,)); rows of
    every array index the same seeds."""
    out = []
    for a, b in zip(order, order[1:]):
        if a in bounds and b in bounds:
            out.append(Comparison(a, b, "log10_dstar90", None, paired_log_threshold(bounds[a], bounds[b], level)))
        for ratio in sorted(set(accs.get(a, {})) & set(accs.get(b, {}))):
            out.append(Comparison(a, b, "test_acc", ratio, paired_difference(accs[a][ratio], accs[b][ratio], level)))
    return out


def _fmt_log(p: Paired) -> tuple[str, str]:
    """The log10 difference and the ratio of d*, each as 'mean [low, high]' with open ends."""
    if p.sided == UNDETERMINED:
        return "-", "-"
    f, flo, fhi = factor(p)
    bound = {UPPER: "≤ ", LOWER: "≥ "}.get(p.sided, "")  # one-sided: the mean is a bound too
    if math.isnan(p.low) or math.isnan(p.high):
        return f"{bound}{p.mean:+.2f} (n = {p.n}, no CI)", f"{bound}×{f:.3g} (n = {p.n}, no CI)"
    lo = "-∞" if p.low == -math.inf else f"{p.low:+.2f}"
    hi = "+∞" if p.high == math.inf else f"{p.high:+.2f}"
    flo_s = "0" if flo == 0 else f"{flo:.3g}"
    fhi_s = "∞" if fhi == math.inf else f"{fhi:.3g}"
    return f"{bound}{p.mean:+.2f} [{lo}, {hi}]", f"{bound}×{f:.3g} [{flo_s}, {fhi_s}]"


def table_rows(comparisons: list[Comparison]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the d*90 comparisons, as strings (accuracy ones are in `to_csv`)."""
    # One '*' per cell: two would read as emphasis in markdown.
    header = ["A", "B", "Δ log10 d*90, A - B [95% CI]", "ratio of d*90, A / B [95% CI]", "n", "verdict"]
    rows = []
    for c in (c for c in comparisons if c.quantity == "log10_dstar90"):
        diff, ratio = _fmt_log(c.result)
        rows.append([c.a, c.b, diff, ratio, str(c.result.n), verdict(c.result, c.a, c.b)])
    return header, rows


def to_csv(comparisons: list[Comparison]) -> str:
    """One row per comparison, machine-readable (numbers unformatted; empty = none, inf = open)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["method_a", "method_b", "quantity", "ratio", "n", "sided", "censored", "mean", "low", "high",
                "factor", "factor_low", "factor_high", "verdict"])
    num = lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.6g}"
    for c in comparisons:
        p = c.result
        factors = factor(p) if c.quantity == "log10_dstar90" else (None, None, None)
        w.writerow([c.a, c.b, c.quantity, num(c.ratio), p.n, p.sided, p.censored, num(p.mean), num(p.low),
                    num(p.high), *(num(f) for f in factors), verdict(p, c.a, c.b)])
    return buf.getvalue()
