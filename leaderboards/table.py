"""Mean ± std over seeds, per (method, ratio)."""
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
