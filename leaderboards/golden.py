"""Compare a leaderboard CSV with a committed golden one, number by number, within stated tolerances."""
from __future__ import annotations

import csv
import io
import math

ACC_ATOL = 0.01  # test accuracy (mean over seeds) may move by at most this much
DSTAR_RTOL = 0.05  # d*90 may move by at most this fraction
EXACT = ("D", "prep_steps", "dstar90_upper_bound")  # counts and flags: no tolerance
TOLERANCES = f"accuracy ± {ACC_ATOL:g}, d*90 ± {100 * DSTAR_RTOL:g}%"


def _rows(text: str) -> dict[str, dict[str, str]]:
    return {r["method"]: r for r in csv.DictReader(io.StringIO(text))}


def _num(v: str) -> float:
    return float(v) if v not in ("", None) else math.nan


def compare(golden: str, new: str, acc_atol: float = ACC_ATOL, dstar_rtol: float = DSTAR_RTOL) -> list[str]:
    """Every difference beyond tolerance, one readable line each; [] when the leaderboards agree."""
    old_rows, new_rows = _rows(golden), _rows(new)
    diffs = [f"method {m}: in the golden leaderboard, missing now" for m in old_rows if m not in new_rows]
    diffs += [f"method {m}: new, not in the golden leaderboard" for m in new_rows if m not in old_rows]
    for method in (m for m in old_rows if m in new_rows):
        old, cur = old_rows[method], new_rows[method]
        for col in sorted(set(old) | set(cur)):
            if not (col in EXACT or col == "dstar90" or col.startswith("acc_mean_r")):
                continue  # ranks follow from the rest; spreads and intervals are noisy with one seed
            a, b = _num(old.get(col, "")), _num(cur.get(col, ""))
            tol = 0.0 if col in EXACT else dstar_rtol * abs(a) if col == "dstar90" else acc_atol
            if math.isnan(a) and math.isnan(b):
                continue
            if math.isnan(a) != math.isnan(b) or abs(a - b) > tol:
                show = lambda v: "not reached" if math.isnan(v) else f"{v:g}"
                diffs.append(f"{method:<20} {col:<20} golden {show(a):>12}  now {show(b):>12}  "
                             f"(tolerance {'exact' if tol == 0 else f'{tol:g}'})")
    return diffs
