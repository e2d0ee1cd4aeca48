"""The leaderboard at matched description length: the bits a method needs to reach 90% of the reference.

Per method and per code (benchmark.training.description: "data_free" and "data_conditional", never mixed in one
ranking), each cell (method, ratio) of the validation-selected members contributes one point:

    b*      the fewest bits per number of θ (among 32, i.e. unquantized, and the logged quantized widths)
            whose seed-mean *validation* accuracy reaches 90% of the reference's validation accuracy;
            32 when none does (the test split is not read to choose it)
    bits    the member's description_bits.<code> at b* (seed mean)
    acc     its test accuracy at b*, per seed

bits*90 is then d*90's crossing and interval (leaderboards.threshold) over those points sorted by bits.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from leaderboards.selection import selected_only
from leaderboards.threshold import Threshold, dstar, format_threshold

CODES = ("data_free", "data_conditional")
UNQUANTIZED = 32


@dataclass(frozen=True)
class Point:
    ratio: float
    d: int
    width: int  # b*: bits per number of θ (32: unquantized)
    bits: float  # seed mean
    acc: np.ndarray  # (S,) test accuracy at that width, NaN for a missing or failed seed


@dataclass(frozen=True)
class BitsRow:
    method: str
    threshold: Threshold  # in bits
    points: tuple[Point, ...]  # ascending bits


def widths(records: list[dict]) -> list[int]:
    """The quantized widths the members logged, largest first, after 32 (unquantized)."""
    found = {int(m.group(1)) for r in records for k in r if (m := re.fullmatch(r"test_acc\.bits(\d+)", k))}
    return [UNQUANTIZED] + sorted(found, reverse=True)


def _suffix(width: int) -> str:
    return "" if width == UNQUANTIZED else f".bits{width}"


def _mean(values) -> float:
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return float(np.mean(finite)) if finite else math.nan


def build_bits(records: list[dict], fraction: float = 0.9) -> dict[str, list[BitsRow]]:
    """{code: rows ranked by bits*90} over the selected members; {} when the members logged no bits."""
    records = [r for r in selected_only(records) if r.get("status") == "FINISHED"]
    if not any(f"description_bits.{CODES[0]}" in r for r in records):
        return {}
    full = [r for r in records if r["method"] == "full"]
    if not full:
        return {}
    full_test = np.array([float(r["test_acc"]) for r in full])
    val_target = fraction * _mean(r["val_acc"] for r in full)
    seeds = sorted({r["seed"] for r in records})
    ws = widths(records)
    out: dict[str, list[BitsRow]] = {code: [] for code in CODES}
    for method in dict.fromkeys(r["method"] for r in records):
        cells: dict[float, list[dict]] = {}
        for r in records:
            if r["method"] == method:
                cells.setdefault(float(r["ratio"]), []).append(r)
        for code in CODES:
            points = []
            for ratio, rs in cells.items():
                have = [w for w in ws if all(f"val_acc{_suffix(w)}" in r for r in rs)]
                reach = [w for w in have if _mean(r[f"val_acc{_suffix(w)}"] for r in rs) >= val_target]
                w = min(reach) if reach else UNQUANTIZED
                by_seed = {r["seed"]: r for r in rs}
                acc = np.array([float(by_seed[s].get(f"test_acc{_suffix(w)}", math.nan)) if s in by_seed
                                else math.nan for s in seeds])
                bits = _mean(r.get(f"description_bits.{code}{_suffix(w)}") for r in rs)
                if math.isfinite(bits):
                    points.append(Point(ratio, int(rs[0]["d"]), w, bits, acc))
            if not points:
                continue
            points.sort(key=lambda p: p.bits)
            acc = np.stack([p.acc for p in points], axis=1)  # (S, n_points)
            t = dstar(acc, [p.bits for p in points], full_test, fraction)
            out[code].append(BitsRow(method, t, tuple(points)))
    for code in CODES:
        out[code].sort(key=lambda row: (row.threshold.d is None, row.threshold.d or 0.0))
    return out


def to_markdown(rows: dict[str, list[BitsRow]]) -> str:
    """One ranked table per code."""
    if not rows:
        return ""
    lines = []
    for code in CODES:
        lines += [f"### {code.replace('_', '-')} code: bits to reach 90% of the reference", "",
                  "| rank | method | bits*90 [95% CI] | cell at the crossing (d, bits per number) |",
                  "|---|---|---|---|"]
        for i, row in enumerate(rows[code], 1):
            t = row.threshold
            at = next((p for p in row.points if t.d is not None and p.bits >= t.d - 1e-9), None)
            where = f"d = {at.d:,}, b = {at.width}" if at else "-"
            lines.append(f"| {i} | {row.method} | {format_threshold(t)} | {where} |")
        lines.append("")
    lines.append("b: θ rounded to b bits per number (32: unquantized), the fewest whose seed-mean validation "
                 "accuracy reaches 90% of the reference's; bits*90: the crossing of the test-accuracy-vs-bits "
                 "curve, interval as for d*90.")
    return "\n".join(lines) + "\n"


def to_csv(rows: dict[str, list[BitsRow]]) -> str:
    """code, method, ratio, d, width, bits, mean test accuracy (one row per point), then bits*90 rows."""
    out = ["code,method,ratio,d,width,bits,test_acc_mean,bits90,bits90_low,bits90_high"]
    for code, rs in rows.items():
        for row in rs:
            t = row.threshold
            cell = lambda v: "" if v is None else f"{v:.6g}"
            for p in row.points:
                out.append(f"{code},{row.method},{p.ratio:g},{p.d},{p.width},{p.bits:.6g},"
                           f"{np.nanmean(p.acc) if np.isfinite(p.acc).any() else float('nan'):.4f},"
                           f"{cell(t.d)},{cell(t.low)},{cell(t.high)}")
    return "\n".join(out) + "\n"
