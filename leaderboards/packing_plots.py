"""Plots of `python -m benchmark pack`: retention against K per regime, and predicted against measured
interference. `result`: a benchmark.packing.PackResult."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

DIM_COLORS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02")
PREDICTIONS = {"first_order": ("gᵀδ", "#1b9e77", "v"), "quadratic": ("gᵀδ + ½δᵀHδ", "#d95f02", "o"),
               "isotropic": ("½‖δ‖² tr(H)/D", "#7570b3", "s")}


def plot_retention(result, path: Path) -> Path:
    """A panel per (regime, anchor): each task's test accuracy in the pack over its accuracy alone against K
    (mean over tasks as a line, min to max as a band), a colour per d; the 90% line is K_90's criterion."""
    regimes = list(dict.fromkeys(c.regime for c in result.cells))
    anchors = list(dict.fromkeys(c.anchor for c in result.cells))
    dims = list(dict.fromkeys(c.d for c in result.cells))
    fig, axes = plt.subplots(len(anchors), len(regimes), figsize=(3.4 * len(regimes) + 0.8, 3.0 * len(anchors)),
                             dpi=110, squeeze=False, sharex=True, sharey=True)
    for c_i, regime in enumerate(regimes):
        for a_i, anchor in enumerate(anchors):
            ax = axes[a_i][c_i]
            for n, d in enumerate(dims):
                cells = sorted((c for c in result.cells if (c.regime, c.anchor, c.d) == (regime, anchor, d)),
                               key=lambda c: c.K)
                if not cells:
                    continue
                ks = [c.K for c in cells]
                ret = [np.array(c.retention) for c in cells]
                color = DIM_COLORS[n % len(DIM_COLORS)]
                label = f"d = {d:,}" + (f" ({d / result.dint.d:.1f} d*90)" if result.dint.d else "")
                ax.plot(ks, [r.mean() for r in ret], "-o", color=color, ms=3, lw=1.4, label=label)
                ax.fill_between(ks, [r.min() for r in ret], [r.max() for r in ret], color=color, alpha=0.15, lw=0)
            ax.axhline(0.9, color="black", lw=0.8, ls=":")
            ax.set_xscale("log", base=2)
            ax.set_title(f"{regime}, anchor {anchor}", fontsize=9)
            ax.set_ylim(0, 1.1)
    for ax in axes[-1]:
        ax.set_xlabel("tasks K")
    for row in axes:
        row[0].set_ylabel("accuracy / accuracy alone")
    axes[0][0].legend(fontsize=7, loc="lower left", framealpha=0.8)
    fig.suptitle(f"{result.data}, D = {result.D:,}: tasks packed as w = b + Σ A_i θ_i (line: mean over tasks; "
                 f"band: min to max; dotted: 90%)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_interference(result, path: Path) -> Path:
    """A panel per anchor: each prediction of ΔL against the measured ΔL (nats), one point per (d, K, task);
    on the diagonal a prediction is exact. Symmetric-log y: the first-order term can be negative."""
    anchors = list(dict.fromkeys(i.anchor for i in result.interference)) or ["w0"]
    fig, axes = plt.subplots(1, len(anchors), figsize=(4.2 * len(anchors), 3.8), dpi=110, squeeze=False)
    for ax, anchor in zip(axes[0], anchors):
        mine = [i for i in result.interference if i.anchor == anchor]
        measured = np.array([i.measured for i in mine])
        for key, (label, color, marker) in PREDICTIONS.items():
            ax.scatter(measured, [getattr(i, key) for i in mine], s=12, color=color, marker=marker, label=label,
                       alpha=0.8)
        top = max([abs(float(v)) for i in mine for v in (i.measured, i.quadratic, i.isotropic)] + [1.0])
        low = max(min([float(v) for v in measured if v > 0] + [top]) / 2, 1e-6)
        ax.plot([low, top], [low, top], color="black", lw=0.8, ls=":")
        ax.set_xscale("log")  # the measured change is an increase (each task sits at its own optimum)
        ax.set_yscale("symlog", linthresh=1e-2)
        ax.set_xlabel("measured ΔL_i (nats)")
        ax.set_title(f"anchor {anchor}", fontsize=9)
    axes[0][0].set_ylabel("predicted ΔL_i")
    axes[0][0].legend(fontsize=7, loc="upper left", framealpha=0.8)
    fig.suptitle("interference of the other tasks' δ = Σ_{j≠i} A_j θ_j on task i (trained alone)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
