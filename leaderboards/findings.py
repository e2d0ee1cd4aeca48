"""A leaderboard's findings as data (findings.json), so that what a README states from it can be checked.

Each finding is a statement the numbers make: the reference's accuracy, each method's threshold d*90
(with its interval, or that it was not reached), the ranking, every paired comparison of adjacent
methods with its verdict (an ordering is a finding only where its interval excludes 0), and the
threshold at matched description length (bits*90) per code. `python -m benchmark verify` re-derives
them from a re-run and compares.
"""
from __future__ import annotations

import math

from leaderboards.build import Leaderboard, comparisons
from leaderboards.paired import verdict

FILE = "findings.json"


def _num(v) -> float | None:
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else round(float(v), 6)


def threshold(row) -> dict:
    t = row.threshold
    return {"dstar90": _num(t.d), "low": _num(t.low), "high": _num(t.high), "reached": t.d is not None,
            "at_most": bool(t.upper_bound), "reached_at_theta0": bool(row.at_theta0),
            "compression90": _num(row.compression)}


def findings(lb: Leaderboard) -> dict:
    """{reference, thresholds, ranking, orderings, bits90}: plain JSON types, None for 'not reached'."""
    ranked = [row for row in lb.rows if row.threshold is not None]
    orderings = []
    for c in comparisons(lb):
        if c.quantity != "log10_dstar90":
            continue
        text = verdict(c.result, c.a, c.b)
        relation = "<" if f"{c.a} < {c.b}" in text else ">" if f"{c.a} > {c.b}" in text else None
        orderings.append({"a": c.a, "b": c.b, "relation": relation, "verdict": text,
                          "mean_log10_ratio": _num(c.result.mean)})
    return {
        "reference": {"test_acc": _num(lb.full_acc), "train_acc": _num(lb.full_train_acc),
                      "target": _num(0.9 * lb.full_acc)},
        "thresholds": {row.method: threshold(row) for row in ranked},
        "ranking": [row.method for row in ranked if row.compression is not None],  # ranked by D/d*90
        "orderings": orderings,  # each method vs the next; relation None: not resolved
        "bits90": {code: {row.method: _num(row.threshold.d) for row in rows} for code, rows in lb.bits.items()},
    }
