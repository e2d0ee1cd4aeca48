"""The report of `python -m benchmark pack`: its tables (README.md, cells.csv, interference.csv, result.json)
and plots (retention against K per regime, predicted against measured interference)."""
from __future__ import annotations

import csv
import io
from dataclasses import asdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from benchmark.studies.packing.experiment import DINT_TASKS, RETAINED, PackResult

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


def _csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return buf.getvalue()


def _dint_text(r: PackResult) -> str:
    return "not reached" if r.dint.d is None else f"{r.dint.d:,.0f}"


def setup_text(r: PackResult) -> str:
    s = r.settings
    opts = ", ".join(f"{k}={v}" for k, v in s.model_options)
    ratio = f" (D/d*90 = {r.D / r.dint.d:,.0f})" if r.dint.d else ""
    return (f"{r.data}, task i = its inputs under permutation π_i (task 0: the dataset); "
            f"model {s.model}{f' ({opts})' if opts else ''}, D = {r.D:,}. Full network on task 0: test "
            f"{r.reference.test_acc:.3f} (lr {r.reference.lr:g}, Adam, chosen on validation). d*90 of one task "
            f"alone under this protocol: {_dint_text(r)}{ratio} (mean over {DINT_TASKS} tasks, target "
            f"{r.dint.target:.3f}). Every member: {s.epochs} epochs of batch {s.batch_size}; θ by SGD (momentum 0.9), "
            f"lr chosen per cell on validation from {list(s.lr_grid)}. Anchors: w0 the initialization, wt after "
            f"{s.burn_in_steps} full-space Adam steps on a mixture of all tasks. Seed {s.seed}.")


def capacity_table(r: PackResult) -> list[str]:
    caps = r.capacities()
    dims = list(dict.fromkeys(c["d"] for c in caps))
    head = [f"d = {d:,}" + (f" ({d / r.dint.d:.1f} d*90)" if r.dint.d else "") for d in dims]
    lines = ["| regime | anchor | " + " | ".join(head) + " |", "|---|---|" + "---|" * len(dims)]
    for regime in dict.fromkeys(c["regime"] for c in caps):
        for anchor in dict.fromkeys(c["anchor"] for c in caps):
            cells = {c["d"]: c for c in caps if (c["regime"], c["anchor"]) == (regime, anchor)}
            lines.append(f"| {regime} | {anchor} | " + " | ".join(
                f"{cells[d]['K_90']} (tested to {cells[d]['K_max']})" if d in cells else "" for d in dims) + " |")
    return lines


def cells_table(r: PackResult) -> list[str]:
    lines = ["| regime | d | anchor | K | K·d/D | lr | mean test acc | mean retention | min retention | "
             "every task ≥ 90% |", "|---|---|---|---|---|---|---|---|---|---|"]
    for c in r.cells:
        row = c.row(r.dint.d, r.D)
        lines.append(f"| {c.regime} | {c.d:,} | {c.anchor} | {c.K} | {row['K_d_over_D']:.2f} | {c.lr:g} | "
                     f"{row['test_acc_mean']:.3f} | {row['retention_mean']:.3f} | {row['retention_min']:.3f} | "
                     f"{'yes' if c.kept else 'no'} |")
    return lines


def interference_table(r: PackResult) -> list[str]:
    """Mean over the predicted tasks, per (d, anchor, K)."""
    groups: dict[tuple, list] = {}
    for i in r.interference:
        groups.setdefault((i.d, i.anchor, i.K), []).append(i)
    mean = lambda xs: sum(xs) / len(xs)
    lines = ["| d | anchor | K | ‖δ‖² | measured ΔL | gᵀδ | gᵀδ + ½δᵀHδ | ½‖δ‖² tr(H)/D |", "|---|---|---|---|---|---|---|---|"]
    for (d, anchor, K), xs in groups.items():
        lines.append(f"| {d:,} | {anchor} | {K} | {mean([x.delta_sq for x in xs]):,.1f} | "
                     f"{mean([x.measured for x in xs]):.3f} | {mean([x.first_order for x in xs]):+.3f} | "
                     f"{mean([x.quadratic for x in xs]):.3f} | {mean([x.isotropic for x in xs]):.3f} |")
    return lines


def summary_text(r: PackResult) -> str:
    return "\n".join([setup_text(r), "", f"K_90: the largest K up to which every task keeps ≥ {RETAINED:.0%} of "
                      f"its accuracy alone (of the largest K tested):", *capacity_table(r)])


def write(r: PackResult, out: Path) -> list[Path]:
    """packing.md, packing.csv (a row per cell), tasks.csv (a row per task of every cell), interference.csv."""
    tasks = [{"regime": c.regime, "d": c.d, "anchor": c.anchor, "K": c.K, "task": i, "lr": c.lr,
              "test_acc": a, "solo_acc": s, "retention": ret, "val_acc": v}
             for c in r.cells for i, (a, s, ret, v) in enumerate(zip(c.test_acc, c.solo_acc, c.retention, c.val_acc))]
    md = ["# Packing K tasks into one network: w = b + Σ_i A_i θ_i", "", setup_text(r), "",
          "## K_90 per regime", "", f"The largest K up to which every task of every tested K keeps ≥ "
          f"{RETAINED:.0%} of its test accuracy alone (same d and anchor); the largest K tested has K·d ≤ D.", "",
          *capacity_table(r), "", "## Every cell", "",
          "Retention: a task's test accuracy in the pack over its accuracy alone. lr chosen per cell on the "
          "tasks' mean validation accuracy; K = 1 is the task alone in every regime.", "", *cells_table(r)]
    if r.interference:
        md += ["", "## Interference: predicted against measured", "",
               "Task i trained alone (solo lr), then δ = Σ_{j≠i, j<K} A_j θ_j added: the change of its training "
               "loss (nats), the first-order term gᵀδ, the quadratic model gᵀδ + ½δᵀHδ (one gradient and one "
               "Hessian-vector product), and the isotropic ½‖δ‖²·tr(H)/D (Hutchinson, "
               f"{r.settings.probes} probes). Mean over the first {r.settings.predicted_tasks} tasks.", "",
               *interference_table(r)]
    if r.times:
        md += ["", "Wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in r.times.items()) +
               f" (total {sum(r.times.values()) / 60:.1f} min)."]
    files = {"packing.md": "\n".join(md) + "\n", "packing.csv": _csv([c.row(r.dint.d, r.D) for c in r.cells]),
             "tasks.csv": _csv(tasks), "interference.csv": _csv([asdict(i) for i in r.interference])}
    paths = []
    for name, text in files.items():
        (out / name).write_text(text)
        paths.append(out / name)
    return paths
