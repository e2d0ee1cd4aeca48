"""The report of `python -m benchmark burnin`: burnin.md, burnin.png (d*90 and the anchor against t) and
burnin_eps.png (d*(ε) per method, one curve per t) from the rows."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from benchmark.studies.axis import COLORS, Row, methods_of, threshold_text
from benchmark.studies.burnin.experiment import FRACTION, Fall, anchor_table


def _fall_text(f: Fall) -> str:
    if f.last_subspace is None:
        return "no subspace threshold after the first t" if f.first.d is not None else "not reached"
    parts = [(f"{threshold_text(f.first)} at t = {f.first.value:g} → {threshold_text(f.last_subspace)} at "
             f"t = {f.last_subspace.value:g}")]
    if f.factor:
        parts.append(f"x{f.factor:.1f} fewer" if f.factor >= 1 else f"x{1 / f.factor:.1f} more")
    if f.halving:
        parts.append(f"one halving per {f.halving:.0f} steps")
    return "; ".join(parts)


def to_markdown(rows: list[Row], falls: list[Fall], settings: str) -> str:
    methods = methods_of(rows)
    ts = sorted({r.value for r in rows})
    fractions = sorted({r.fraction for r in rows})
    by = {(r.value, r.method, r.fraction): r for r in rows}
    anchors = {t: (a, ref, target) for t, a, ref, target in anchor_table(rows)}
    lines = ["# How fast does the threshold dimension fall with burn-in?", "", settings, "",
             ("d*90 per burn-in time t (95% interval over seeds); 'w_t alone': the anchor at θ = 0, seed-mean test "
             "accuracy; '(θ = 0 reaches it)': the member at its offset already reaches the target where the "
             "threshold lies, so that threshold is the anchor's, not the subspace's."), "",
             "| t | full network | 90% target | w_t alone | " + " | ".join(methods) + " |",
             "|---|---|---|---|" + "---|" * len(methods)]
    for t in ts:
        a, ref, target = anchors.get(t, (float("nan"),) * 3)
        cells = [threshold_text(by[(t, m, FRACTION)]) if (t, m, FRACTION) in by else "" for m in methods]
        flag = " **≥ target**" if a >= target else ""
        lines.append(f"| {t:g} | {ref:.3f} | {target:.3f} | {a:.3f}{flag} | " + " | ".join(cells) + " |")
    lines += ["", "## d*90 along t", ""]
    lines += [f"- {f.method}: {_fall_text(f)}" + (f"; from t = {f.anchor_from:g} the anchor alone reaches 90%"
                                                   if f.anchor_from is not None else "") for f in falls]
    lines += ["", "## d*(ε) per method", "",
              "ε: the target as a fraction of the reference's test accuracy (ε = 0.9 is d*90).", ""]
    for m in methods:
        lines += [f"### {m}", "", "| t | " + " | ".join(f"ε = {f:g}" for f in fractions) + " |",
                  "|---|" + "---|" * len(fractions)]
        for t in ts:
            lines.append(f"| {t:g} | " + " | ".join(threshold_text(by[(t, m, f)]) if (t, m, f) in by else ""
                                                    for f in fractions) + " |")
        lines.append("")
    return "\n".join(lines)


def _x(t: float) -> float:
    return t if t > 0 else 0.5  # t = 0 drawn at 0.5 on the log axis, labelled 0


def plot(rows: list[Row], path: Path) -> Path:
    """Left: d*90 against t per method (log-log, t = 0 at the left edge), 95% intervals as bars, hollow where
    the anchor alone reaches the target (the anchor's threshold), '≤ d' as a down triangle. Right: w_t alone
    against t with the reference and its 90% target: where the curve is above the target, the anchor does
    the work."""
    fig, (ax, acc) = plt.subplots(1, 2, figsize=(11, 4.3), dpi=110)
    ts = sorted({r.value for r in rows})
    for m in methods_of(rows):
        color = COLORS.get(m, "#555555")
        mine = sorted((r for r in rows if r.method == m and r.fraction == FRACTION and r.d is not None),
                      key=lambda r: r.value)
        ax.plot([_x(r.value) for r in mine], [r.d for r in mine], "-", color=color, lw=1.3, label=m)
        for r in mine:
            lo = r.d - (r.low if r.low is not None else r.d)
            hi = (r.high - r.d) if r.high is not None else 0
            ax.errorbar([_x(r.value)], [r.d], yerr=[[lo], [hi]], fmt="v" if r.upper_bound else "o", color=color,
                        ms=5, mfc="white" if r.at_theta0 or r.upper_bound else color, capsize=2, lw=1)
    ax.plot([], [], "o", color="#555555", mfc="white", label="hollow: θ = 0 (w_t alone) reaches it")
    anchors = anchor_table(rows)
    acc.plot([_x(t) for t, *_ in anchors], [a for _, a, *_ in anchors], "-o", color="#9467bd", label="w_t alone")
    acc.plot([_x(t) for t, *_ in anchors], [ref for _, _, ref, _ in anchors], "-", color="black", lw=1,
             label="full network")
    acc.plot([_x(t) for t, *_ in anchors], [tg for *_, tg in anchors], "--", color="black", lw=1,
             label="90% target")
    for a in (ax, acc):
        a.set_xscale("log")
        a.set_xticks([_x(t) for t in ts], [f"{t:g}" for t in ts])
        a.set_xlabel("burn-in steps t")
        a.grid(True, which="both", alpha=0.25)
    ax.set_yscale("log")
    ax.set_ylabel("d*90")
    ax.set_title("d*90 of the subspaces placed at w_t", fontsize=9)
    acc.set_ylabel("test accuracy")
    acc.set_title("the anchor alone (θ = 0)", fontsize=9)
    ax.legend(fontsize=7, framealpha=0.85)
    acc.legend(fontsize=7, framealpha=0.85)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_eps(rows: list[Row], path: Path) -> Path:
    """One panel per method: d*(ε) against ε, one curve per t (darker: later), hollow where θ = 0 reaches it."""
    methods = methods_of(rows)
    ts = sorted({r.value for r in rows})
    fig, axes = plt.subplots(1, len(methods), figsize=(3.3 * len(methods) + 0.6, 3.5), dpi=110, squeeze=False,
                             sharey=True)
    cmap = plt.get_cmap("viridis")
    for ax, m in zip(axes[0], methods):
        for i, t in enumerate(ts):
            mine = sorted((r for r in rows if r.method == m and r.value == t and r.d is not None),
                          key=lambda r: r.fraction)
            color = cmap(i / max(1, len(ts) - 1))
            ax.plot([r.fraction for r in mine], [r.d for r in mine], "-", color=color, lw=1.2, label=f"t = {t:g}")
            ax.scatter([r.fraction for r in mine], [r.d for r in mine], s=14, color=color, zorder=3,
                       facecolors=["white" if r.at_theta0 else color for r in mine])
        ax.set_yscale("log")
        ax.set_title(m, fontsize=9)
        ax.set_xlabel("ε (fraction of the reference's accuracy)")
        ax.grid(True, which="both", alpha=0.25)
    axes[0][0].set_ylabel("d*(ε)")
    axes[0][-1].legend(fontsize=7, framealpha=0.85)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
