"""Mean ± std over seeds, method x ratio."""
from __future__ import annotations

import math
import statistics
from collections import defaultdict


def summarize(records: list[dict], metric: str = "test_acc") -> dict[tuple[str, float], dict]:
    """(method, ratio) -> {mean, std, n, failed, d} over seeds. FAILED members count in `failed`."""
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
            "d": int(rs[0]["d"]),
        }
    return out


def accuracy_table(records: list[dict], metric: str = "test_acc", method_order: list[str] | None = None) -> str:
    """A markdown table: one row per method, one column per ratio D/d, cells 'mean ± std'."""
    s = summarize(records, metric)
    ratios = sorted({r for _, r in s})
    methods = method_order or sorted({m for m, _ in s})
    methods = [m for m in methods if any((m, r) in s for r in ratios)]
    header = ["method"] + [f"D/d={r:g}" for r in ratios]
    rows = [header, ["---"] * len(header)]
    for m in methods:
        row = [m]
        for r in ratios:
            c = s.get((m, r))
            if c is None:
                row.append("")
            elif c["n"] == 0:
                row.append(f"FAILED ({c['failed']})")
            else:
                cell = f"{c['mean']:.3f} ± {c['std']:.3f}"
                row.append(cell + (f" ({c['failed']} failed)" if c["failed"] else ""))
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for r in rows:
        if r[0] == "---":
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        else:
            lines.append("| " + " | ".join(v.ljust(w) for v, w in zip(r, widths)) + " |")
    return "\n".join(lines)
