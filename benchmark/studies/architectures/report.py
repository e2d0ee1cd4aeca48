"""The report of `python -m benchmark architectures`: README.md and thresholds.csv from the rows."""
from __future__ import annotations

import csv
import io

from benchmark.studies.architectures.experiment import Row


def _fmt(d: float | None, upper: bool = False) -> str:
    if d is None:
        return "not reached"
    return f"≤ {d:,.0f}" if upper else f"{d:,.0f}"


def _ci(r: Row) -> str:
    if r.d90_low is None or r.upper_bound:
        return ""
    return f" [{r.d90_low:,.0f}, {'open' if r.d90_high is None else f'{r.d90_high:,.0f}'}]"


def _ratio(D: int, d: float | None, upper: bool) -> str:
    return "" if not d else f"{'≥ ' if upper else ''}{D / d:,.1f}"


def to_markdown(rows: list[Row], target: float, unigram: dict[str, float], settings: str,
                edges: dict[str, dict[str, tuple[str, ...]]] | None = None) -> str:
    """The report; edges: job -> lr_edges of its records."""
    lines = ["# Is D/d*90 larger for a transformer?", "", settings, "",
             "## MNIST-1D as a sequence, D matched within ±10%", "",
             f"d*90: the smallest d whose seed-mean test accuracy reaches 90% of the architecture's own full "
             f"network (95% interval over seeds); common: 90% of the weakest reference, {target:.3f}, the same "
             f"target for every architecture.", "",
             "| model | D | full network | method | d*90 [95% CI] | D/d*90 | d at the common target | D/d (common) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.dataset != "mnist1d":
            continue
        lines.append(f"| {r.model} | {r.D:,} | {r.reference:.3f} | {r.method} | {_fmt(r.d90, r.upper_bound)}{_ci(r)} | "
                     f"{_ratio(r.D, r.d90, r.upper_bound)} | {_fmt(r.d90_common, r.common_upper)} | "
                     f"{_ratio(r.D, r.d90_common, r.common_upper)} |")
    text = [r for r in rows if r.dataset != "mnist1d"]
    if text:
        lines += ["", "## Character-level text (next character from 32), transformer", "",
                  "Bits per character on test; d*90: the smallest d that gains 90% of the full network's bits over "
                  "the unigram model (u − b(d) ≥ 0.9 (u − b_ref)).", "",
                  "| dataset | D | unigram | full network | method | d*90 [95% CI] | D/d*90 | bits/char at each d |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in text:
            curve = ", ".join(f"{d:,.0f}: {b:.2f}" for d, b in sorted(r.curve.items()))
            lines.append(f"| {r.dataset} | {r.D:,} | {unigram[r.job]:.3f} | {r.reference:.3f} | {r.method} | "
                         f"{_fmt(r.d90, r.upper_bound)}{_ci(r)} | {_ratio(r.D, r.d90, r.upper_bound)} | {curve} |")
        beaten = [r for r in text if min(r.curve.values()) < r.reference]
        if beaten:  # a subspace member with fewer bits than the full network: suspect the reference first
            lines += ["", f"**Not a valid threshold:** {', '.join(sorted({r.method for r in beaten}))} reach fewer "
                      f"bits per character than the full network ({min(min(r.curve.values()) for r in beaten):.2f} "
                      f"against {beaten[0].reference:.2f}): the reference is not converged or overfits in loss, "
                      f"so 90% of its gain is no target. Train it longer or on more text (dataset.train_windows) "
                      f"before reading d*90 here."]
    if edges and any(edges.values()):
        lines += ["", "## Learning rates chosen at an end of their candidates", "",
                  "Each cell's lr is chosen on validation among the same number of candidates for every method; "
                  "where the choice is the smallest or the largest, a wider grid might do better there.", ""]
        lines += [f"- {job} {m}: {'; '.join(cells)}" for job, per in edges.items() for m, cells in per.items()]
    return "\n".join(lines) + "\n"


def to_csv(rows: list[Row]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["job", "dataset", "model", "D", "method", "reference", "d90", "d90_low", "d90_high", "d90_upper_bound",
                "D_over_d90", "d90_common"])
    for r in rows:
        w.writerow([r.job, r.dataset, r.model, r.D, r.method, r.reference, r.d90, r.d90_low, r.d90_high,
                    r.upper_bound, r.compression, r.d90_common])
    return buf.getvalue()
