"""Plots a reader takes in at a glance: accuracy vs compression, P_s heatmaps, d*(eps) curves."""
from __future__ import annotations

import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

from leaderboards.build import ANCHOR_NAMES, CONVERGED, Leaderboard, ratio_text  # noqa: E402

# One colour per family, one line style per anchor: pruning in warm colours, general subspaces in cool ones.
STYLE = {
    "random_pruning": ("#e6550d", "--", "v"),
    "random_pruning_t": ("#e6550d", "-", "v"),
    "lottery_ticket": ("#a63603", "--", "s"),
    "lottery_ticket_t": ("#a63603", "-", "s"),
    "random_affine": ("#6baed6", "--", "o"),
    "burn_in_affine": ("#6baed6", "-", "o"),
    "lottery_subspace": ("#08519c", "--", "D"),
    "lottery_subspace_t": ("#08519c", "-", "D"),
    "lottery_subspace_indep": ("#54278f", "--", "P"),
    "erk_random": ("#fdae6b", "--", "^"),
    "snip": ("#d62728", "--", "<"),
    "snip_t": ("#d62728", "-", "<"),
    "grasp": ("#8c564b", "--", ">"),
    "synflow": ("#e377c2", "--", "*"),
    "magnitude_init": ("#bcbd22", "--", "h"),
    "magnitude_t": ("#bcbd22", "-", "h"),
}


def _style(method: str):
    """(colour, line style, marker); a layer-shuffled control is its mask's colour, dotted."""
    base = method.removesuffix("_shuffled")
    color, ls, marker = STYLE.get(base, ("#555555", "-", "x"))
    return (color, ":", marker) if base != method else (color, ls, marker)


def accuracy_vs_compression(lb: Leaderboard, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(11, 5), dpi=120)
    for row in lb.rows:
        if row.method == "full":
            continue
        ratios = sorted(row.acc)
        mean = np.array([row.acc[r]["mean"] for r in ratios])
        std = np.array([row.acc[r]["std"] for r in ratios])
        color, ls, marker = _style(row.method)
        label = row.method
        if row.compression is not None:
            label += f"  (D/d*90 {'≥' if row.threshold.upper_bound else '='} {row.compression:,.0f})"
        if row.at_theta0:
            label += "  (target reached at θ = 0)"
        if not np.isfinite(mean).any():
            label += "  (diverged or failed at every D/d)"
        ax.plot(ratios, mean, ls=ls, marker=marker, color=color, label=label, lw=1.8, ms=5)
        ax.fill_between(ratios, mean - std, mean + std, color=color, alpha=0.12, lw=0)
        partly = [r for r in ratios if r in row.principal]
        if partly:  # a lottery basis that is partly random completion: hollow, white-filled markers
            ax.plot(partly, [row.acc[r]["mean"] for r in partly], ls="none", marker=marker, ms=7, color=color,
                    markerfacecolor="white", zorder=3)
    for anchor, acc in lb.anchors.items():
        ax.axhline(acc, color="grey", lw=1, ls="-." if anchor == "w0" else "--",
                   label=f"{ANCHOR_NAMES[anchor]} alone, θ = 0 ({acc:.3f})")
    if math.isfinite(lb.full_acc):
        converged = "" if lb.full_train_acc >= CONVERGED else ", NOT CONVERGED"
        ax.axhline(lb.full_acc, color="black", lw=1.2,
                   label=f"full network ({lb.full_acc:.3f}; train {lb.full_train_acc:.3f}{converged})")
        ax.axhline(0.9 * lb.full_acc, color="black", lw=1, ls=":", label="90% of full")
    ax.set_xscale("log")
    tested = [r for r in lb.ratios if r > 1]
    if tested:  # the tested range, even where no method has a finite point to scale the axis by
        ax.set_xlim(min(tested) / 1.3, max(tested) * 1.3)
    ax.set_xticks(tested, [ratio_text(r) for r in tested], rotation=45 if len(tested) > 7 else 0)
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("compression D/d (log scale; d = round(D/ratio) trainable scalars)")
    ax.set_ylabel("test accuracy (mean ± std over seeds)")
    ax.set_title(f"{lb.dataset} / {lb.model}, D = {lb.D:,}: which method compresses furthest")
    ax.grid(True, which="both", alpha=0.3)
    partly = any(row.principal for row in lb.rows)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title_fontsize=8,
              title="dashed: offset w0, solid: offset w_t"
              + ("\nhollow: lottery basis partly random\n(r principal + d - r random)" if partly else ""))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def success_heatmaps(lb: Leaderboard, path: Path) -> Path:
    methods = [m for m in lb.success if m != "full"]
    cols = min(4, max(1, len(methods)))
    rows = max(1, math.ceil(len(methods) / cols))  # a run of `full` alone still gets its (empty) figure
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), dpi=110, squeeze=False,
                             sharey=True, constrained_layout=True)
    im = None
    for ax, m in zip(axes.flat, methods):
        ps = lb.success[m]
        ds = lb.success_ds[m]
        im = ax.imshow(ps, origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(range(len(ds)), [f"{d:,.0f}" for d in ds], rotation=45, fontsize=7)
        ax.set_yticks(range(len(lb.eps)), [f"{e:.2f}" for e in lb.eps], fontsize=7)
        ax.set_title(m, fontsize=9)
        ax.set_xlabel("d (trainable scalars)", fontsize=8)
        if ax in axes[:, 0]:
            ax.set_ylabel("train-acc threshold ε", fontsize=8)
    for ax in list(axes.flat)[len(methods):]:
        ax.axis("off")
    if not methods:
        axes.flat[0].text(0.5, 0.5, "no method besides the reference (full) was run", ha="center", va="center")
    if im is not None:
        fig.colorbar(im, ax=axes, shrink=0.8, label="P_s(d, ε): share of seeds reaching ε")
    fig.get_layout_engine().set(w_pad=0.05, h_pad=0.1)
    fig.suptitle(f"{lb.dataset} / {lb.model}: success probability", fontsize=11)
    fig.savefig(path)
    plt.close(fig)
    return path


def dstar_curves(lb: Leaderboard, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for m, values in lb.dstar_eps.items():
        if m == "full":
            continue
        pts = [(e, v) for e, v in zip(lb.eps, values) if v is not None]
        if not pts:
            continue
        color, ls, marker = _style(m)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], ls=ls, marker=marker, color=color, label=m)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    else:  # an empty plot should say why
        ax.text(0.5, 0.5, "no method reached any threshold at the ratios run", transform=ax.transAxes,
                ha="center", va="center")
    ax.set_yscale("log")
    ax.set_xlabel("training-accuracy threshold ε")
    ax.set_ylabel("threshold training dimension d*(ε) (log)")
    ax.set_title(f"{lb.dataset} / {lb.model}: lower is better (fewer dimensions needed)")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


VIEWS = {"layer_density": ("kept fraction of the tensor", "per_layer_density.png", "pruning: where each mask keeps its d"),
         "layer_shift": ("share of ‖w − b‖²", "per_layer_shift.png", "where training moved w from its offset b")}


def per_layer(lb: Leaderboard, view: str, path: Path) -> Path:
    """One panel per method: the view's value per parameter tensor (one line each) against D/d."""
    label, _, title = VIEWS[view]
    data = {m: v for m, v in lb.layers[view].items() if m != "full"}
    natural = lambda n: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", n)]
    names = sorted({n for rs in data.values() for cell in rs.values() for n in cell}, key=natural)
    cols = min(4, max(1, len(data)))
    rows = max(1, math.ceil(len(data) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols + 2.2, 2.6 * rows + 0.6), dpi=110, squeeze=False,
                             sharex=True, sharey=True, layout="constrained")
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, max(1, len(names))))
    for ax, (m, rs) in zip(axes.flat, data.items()):
        ratios = sorted(rs)
        for n, c in zip(names, colors):
            ys = [rs[r].get(n, math.nan) for r in ratios]
            ax.plot(ratios, ys, marker="o", ms=3, color=c, label=n)
        ax.set_title(m, fontsize=9)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(ratios))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: ratio_text(v)))
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        if view == "layer_density":  # symlog: an emptied layer (density 0) stays on the plot
            ax.set_yscale("symlog", linthresh=1e-3)
            ax.set_ylim(0, 1.05)
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(data):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("D/d (log)")
    for ax in axes[:, 0]:
        ax.set_ylabel(label, fontsize=8)
    if not data:
        axes.flat[0].set_visible(True)
        axes.flat[0].text(0.5, 0.5, "no method besides the reference (full) was run", ha="center", va="center")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside right center", fontsize=7, title="parameter", title_fontsize=8)
    fig.suptitle(f"{lb.dataset} / {lb.model}: {title} (mean over seeds, selected lr)", fontsize=10)
    fig.savefig(path)
    plt.close(fig)
    return path


def accuracy_vs_bits(lb: Leaderboard, path: Path) -> Path:
    """Test accuracy against description length (log bits), one panel per code, one line per method."""
    codes = list(lb.bits)
    fig, axes = plt.subplots(1, len(codes), figsize=(6 * len(codes) + 3, 5), dpi=120, sharey=True, squeeze=False)
    for ax, code in zip(axes[0], codes):
        for row in lb.bits[code]:
            color, ls, marker = _style(row.method) if row.method != "full" else ("black", "-", "o")
            bits = [p.bits for p in row.points]
            mean = [float(np.nanmean(p.acc)) if np.isfinite(p.acc).any() else math.nan for p in row.points]
            label = row.method + (f"  (bits*90 {row.threshold.d:,.0f})" if row.threshold.d is not None else "")
            ax.plot(bits, mean, ls=ls, marker=marker, color=color, label=label, lw=1.6, ms=5)
        if math.isfinite(lb.full_acc):
            ax.axhline(0.9 * lb.full_acc, color="black", lw=1, ls=":", label="90% of full")
        ax.set_xscale("log")
        ax.set_xlabel("description length, bits (log; θ at its validation-chosen b)")
        ax.set_title(f"{lb.dataset} / {lb.model}: {code.replace('_', '-')} code", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # each panel ranks by its own code
    axes[0][0].set_ylabel("test accuracy (seed mean)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_plots(lb: Leaderboard, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    return [
        accuracy_vs_compression(lb, out / "accuracy_vs_compression.png"),
        success_heatmaps(lb, out / "success_probability.png"),
        dstar_curves(lb, out / "dstar_eps.png"),
    ] + [per_layer(lb, view, out / VIEWS[view][1]) for view in VIEWS if view in lb.layers] + (
        [accuracy_vs_bits(lb, out / "accuracy_vs_bits.png")] if lb.bits else [])
