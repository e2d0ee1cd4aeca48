"""The report of `python -m benchmark invariance`: invariance.md and invariance.png from the rows."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from benchmark.studies.axis import COLORS, Row, methods_of, threshold_text
from benchmark.studies.invariance.experiment import FRACTION, Spread

ROUNDING = 1.7  # float rounding alone moves d*90 by up to x1.7 (README, Reproducibility): the band drawn


def _at(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r.fraction == FRACTION]


def _opt(v: float | None, fmt: str = ",.0f") -> str:
    return "-" if v is None or math.isnan(v) else format(v, fmt)


def to_markdown(rows: list[Row], spreads: list[Spread], settings: str) -> str:
    rows = _at(rows)
    models = list(dict.fromkeys(r.point for r in rows))
    methods = methods_of(rows)
    by = {(r.point, r.method): r for r in rows}
    lines = ["# Is the threshold dimension invariant to model size?", "", settings, "",
             ("d*90: the smallest d whose seed-mean test accuracy reaches 90% of that model's own full network "
             "(95% interval over seeds); '≤ d': reached already at the smallest d tested; '(θ = 0 reaches it)': "
             "the anchor alone does, so that threshold is the anchor's."), "",
             "| model | D | full network | " + " | ".join(f"{m} d*90" for m in methods) + " |",
             "|---|---|---|" + "---|" * len(methods)]
    for p in models:
        first = next(r for r in rows if r.point == p)
        cells = [threshold_text(by[(p, m)]) if (p, m) in by else "" for m in methods]
        lines.append(f"| {p} | {first.D:,} | {first.reference:.3f} | " + " | ".join(cells) + " |")
    lines += ["", "## Across models", "",
              ("spread: largest over smallest d*90 among the models where it is a crossing; certain: the largest "
              "lower bound over the smallest upper bound (above 1, the intervals leave no doubt that d*90 moved); "
              "slope: b in log d*90 = a + b log D (0: invariant, 1: constant D/d*90)."), "",
              "| method | measured / models | d*90 range | spread | certain | D spread | slope ± se | invariant? |",
              "|---|---|---|---|---|---|---|---|"]
    for s in spreads:
        rng = "-" if s.d_min is None else f"{s.d_min:,.0f} - {s.d_max:,.0f}"
        slope = "-" if math.isnan(s.slope) else f"{s.slope:+.2f}" + ("" if math.isnan(s.slope_se) else f" ± {s.slope_se:.2f}")
        lines.append(f"| {s.method} | {s.measured} / {s.models} | {rng} | {_opt(s.spread, '.1f')} | "
                     f"{_opt(s.certain, '.2f')} | {s.D_spread:.1f} | {slope} | {s.verdict} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[Row], path: Path) -> Path:
    """d*90 against D (log-log), one colour per method, 95% intervals as bars; '≤ d' and the anchor's
    thresholds hollow, 'not reached' left out. Per method the constant d at the geometric mean of its
    crossings, with the x1.7 rounding band shaded (a flat band: invariant); a dashed grey line of slope 1
    is what a constant D/d would give."""
    rows = _at(rows)
    fig, ax = plt.subplots(figsize=(7.2, 5), dpi=110)
    Ds = np.array(sorted({r.D for r in rows}), dtype=float)
    for m in methods_of(rows):
        color = COLORS.get(m, "#555555")
        mine = sorted((r for r in rows if r.method == m and r.d is not None), key=lambda r: r.D)
        ok = [r for r in mine if not r.upper_bound and not r.at_theta0]
        for r in mine:
            lo = r.d - (r.low if r.low is not None else r.d)
            hi = (r.high - r.d) if r.high is not None else 0
            hollow = r.upper_bound or r.at_theta0
            ax.errorbar([r.D], [r.d], yerr=[[lo], [hi]], fmt="v" if r.upper_bound else "o", color=color, ms=5,
                        mfc="white" if hollow else color, capsize=2, lw=1)
        if ok:
            ax.plot([r.D for r in ok], [r.d for r in ok], "-", color=color, lw=1.4, label=m)
            g = float(np.exp(np.mean(np.log([r.d for r in ok]))))
            ax.fill_between(Ds, g / ROUNDING, g * ROUNDING, color=color, alpha=0.12, lw=0)
            ax.plot(Ds, [g] * len(Ds), ":", color=color, lw=1)
        elif mine:
            ax.plot([], [], "v", color=color, mfc="white", label=f"{m} (≤ smallest d)")
    if len(Ds):
        anchor = next((r for r in rows if r.method == "random_affine" and r.d), None)
        y0 = anchor.d * Ds / anchor.D if anchor else Ds / 100
        ax.plot(Ds, y0, "--", color="#999999", lw=1, label="constant D/d (slope 1)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("D (parameters of the model)")
    ax.set_ylabel("d*90")
    ax.set_title("Threshold dimension against model size (flat band: invariant; ×1.7 rounding shaded)", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", framealpha=0.85)
    ax.grid(True, which="both", alpha=0.25)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
