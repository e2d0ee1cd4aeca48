"""Mean ± std over seeds, per (method, ratio), and how a cell states its n."""
from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict


def summarize(records: list[dict], metric: str = "test_acc") -> dict[tuple[str, float], dict]:
    """(method, ratio) -> {mean, std, n, failed, diverged, d} over seeds. FAILED members count in `failed`;
    `diverged`: no member has a finite value and one of them diverged (a non-finite loss or accuracy)."""
    groups: dict[tuple[str, float], list[dict]] = defaultdict(list)
    for r in records:
        groups[(r["method"], float(r["ratio"]))].append(r)
    out = {}
    for key, rs in groups.items():
        vals = [float(r[metric]) for r in rs if r["status"] == "FINISHED" and math.isfinite(float(r.get(metric, "nan")))]
        out[key] = {
            "mean": statistics.fmean(vals) if vals else math.nan,
            "std": statistics.stdev(vals) if len(vals) > 1 else 0.0 if vals else math.nan,
            "n": len(vals),
            "failed": len(rs) - len(vals),
            "diverged": not vals and any(_diverged(r, metric) for r in rs),
            "d": int(rs[0]["d"]),
        }
    return out


def _diverged(record: dict, metric: str) -> bool:
    """A member stopped by a non-finite loss (train.py says so in its reason), or one that finished with a
    non-finite value."""
    return "diverged" in (record.get("failure_reason") or "") or record["status"] == "FINISHED"


def typical_n(cells) -> int:
    """The table's n: the most common number of seeds over cells that have any (ties: the larger n)."""
    counts = Counter(c["n"] for c in cells if c["n"] > 0)
    return max(counts, key=lambda n: (counts[n], n)) if counts else 0


def format_acc(cell: dict, n_table: int) -> str:
    """An accuracy cell: 'mean ± std', the n only where it differs from the table's n_table (stated
    once in a note line), and failed members. With one seed there is no std to show."""
    if cell["n"] == 0:
        return "diverged (every lr)" if cell.get("diverged") else "FAILED (every lr)"
    text = f"{cell['mean']:.3f}" if cell["n"] == 1 else f"{cell['mean']:.3f} ± {cell['std']:.3f}"
    notes = ([f"n = {cell['n']}"] if cell["n"] != n_table else []) + (
        [f"{cell['failed']} failed"] if cell["failed"] else [])
    return text + (f" ({', '.join(notes)})" if notes else "")
