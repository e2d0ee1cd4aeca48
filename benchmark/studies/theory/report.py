"""The report of `python -m benchmark theory`: its tables (README.md, thresholds.csv) and plots (measured
P_s(d, ε) with the predicted thresholds, and the transition widths)."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from benchmark.studies.theory.experiment import (
    CHECKED_FROM_D,
    TOLERANCE,
    Landscape,
    TheorySettings,
    width_exponents,
    worst_errors,
)

SPECTRUM_COLORS = {"flat": "#1b9e77", "power": "#d95f02", "spiked": "#7570b3"}


def plot_heatmaps(results, path: Path) -> Path:
    """One panel per (spectrum, D): P_s over (d/D, ε/L(w0)), D − δ(C) solid, D − w(C)² dashed,
    measured 50% crossings as dots. `results`: objects with spectrum, D, fractions, heatmap
    (len(fractions), D + 1) and thresholds (benchmark.studies.theory.experiment.Landscape)."""
    spectra = list(dict.fromkeys(r.spectrum for r in results))
    dims = sorted({r.D for r in results})
    fig, axes = plt.subplots(len(spectra), len(dims), figsize=(3.6 * len(dims) + 1.2, 3.2 * len(spectra)),
                             dpi=110, squeeze=False, sharex=True, sharey=True)
    image = None
    for r in results:
        ax = axes[spectra.index(r.spectrum)][dims.index(r.D)]
        image = ax.imshow(r.heatmap.numpy(), origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=1,
                          extent=(-0.5 / r.D, 1 + 0.5 / r.D, r.fractions[0] - 0.005, r.fractions[-1] + 0.005))
        eps = [t.eps_fraction for t in r.thresholds]
        ax.plot([t.predicted / r.D for t in r.thresholds], eps, "-", color="white", lw=1.6, label="D − δ(C)")
        ax.plot([t.predicted_gordon / r.D for t in r.thresholds], eps, "--", color="#ff7f7f", lw=1.4,
                label="D − w(C)²")
        ax.plot([t.measured / r.D for t in r.thresholds], eps, "o", color="black", ms=3.5, mfc="white",
                label="measured P_s = ½")
        ax.set_title(f"{r.spectrum}, D = {r.D:,}", fontsize=9)
        ax.set_xlim(0, 1)
    for ax in axes[-1]:
        ax.set_xlabel("d / D")
    for row_axes in axes:
        row_axes[0].set_ylabel("ε / L(w0)")
    axes[0][0].legend(fontsize=7, loc="upper right", framealpha=0.8)
    fig.colorbar(image, ax=axes, shrink=0.8, label="P_s: share of random subspaces reaching L ≤ ε")
    fig.suptitle("Random affine subspaces on quadratics: measured success probability vs predicted threshold")
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_widths(results, path: Path) -> Path:
    """Transition width d(P_s = 0.9) − d(P_s = 0.1) against D (log-log): per spectrum the mean over ε,
    with the range over ε shaded and a √D guide; and the same relative to D."""
    fig, (ax, rel) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    dims = sorted({r.D for r in results})
    for spectrum in dict.fromkeys(r.spectrum for r in results):
        mine = sorted((r for r in results if r.spectrum == spectrum), key=lambda r: r.D)
        D = np.array([r.D for r in mine], dtype=float)
        w = np.array([[t.transition for t in r.thresholds] for r in mine])  # (len(D), len(eps))
        w = np.where(np.isfinite(w) & (w > 0), w, np.nan)
        color = SPECTRUM_COLORS.get(spectrum, "#555555")
        for a, scale in ((ax, 1.0), (rel, D)):
            a.plot(D, np.nanmean(w, 1) / scale, "-o", color=color, lw=1.8, ms=4, label=spectrum)
            a.fill_between(D, np.nanmin(w, 1) / scale, np.nanmax(w, 1) / scale, color=color, alpha=0.15, lw=0)
    guide = np.array(dims, dtype=float)
    ax.plot(guide, 2 * np.sqrt(guide), "k:", lw=1.5, label="2 √D")
    rel.plot(guide, 2 / np.sqrt(guide), "k:", lw=1.5, label="2 / √D")
    for a in (ax, rel):
        a.set_xscale("log")
        a.set_yscale("log")
        a.set_xticks(dims, [f"{d:,}" for d in dims])
        a.minorticks_off()
        a.set_xlabel("D")
        a.grid(True, alpha=0.3)
        a.legend(fontsize=8, title="mean over ε (band: range)", title_fontsize=8)
    ax.set_ylabel("transition width, d(0.9) − d(0.1)")
    rel.set_ylabel("transition width / D")
    fig.suptitle("The transition sharpens: its width grows like √D, so relative to D it shrinks")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def to_csv(results: list[Landscape]) -> str:
    buf = io.StringIO()
    rows = [t.row() for r in results for t in r.thresholds]
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def to_markdown(results: list[Landscape], settings: TheorySettings) -> str:
    header = ("| spectrum | D | ε / L(w0) | measured d at P_s = ½ | D − δ(C) | D − w(C)² | error (δ) | "
              "error (w²) | width d(0.9) − d(0.1) |")
    lines = [header, "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        for t in r.thresholds:
            lines.append(f"| {t.spectrum} | {t.D:,} | {t.eps_fraction:g} | {t.measured:,.1f} | {t.predicted:,.1f} | "
                         f"{t.predicted_gordon:,.1f} | {100 * t.error:+.2f}% | {100 * t.error_gordon:+.2f}% | "
                         f"{t.transition:,.1f} |")
    lines.append("")
    for from_D in (0, CHECKED_FROM_D):
        worst = worst_errors(results, from_D)
        if worst:
            lines.append(f"Worst |error| over every ε{f' for D ≥ {from_D:,}' if from_D else ' and D'}: statistical "
                         f"dimension {100 * worst['statdim']:.2f}% of D, Gordon {100 * worst['gordon']:.2f}% of D "
                         f"(tolerance {100 * TOLERANCE:g}% for D ≥ {CHECKED_FROM_D:,}).")
    exps = width_exponents(results)
    if exps:
        lines.append("Transition width ~ D^p, median p over ε: " +
                     ", ".join(f"{k} p = {v:.2f}" for k, v in exps.items()) + " (√D is p = 0.5).")
    lines.append(f"Errors are (prediction − measured) / D. {settings.draws} random subspaces per landscape, "
                 f"{settings.samples} Gaussian samples per cone; seed {settings.seed}.")
    return "\n".join(lines) + "\n"
