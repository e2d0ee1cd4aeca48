"""The report of `python -m benchmark predict`: predict.csv (one row per model and ε), predict.md and
predict.png (predicted against measured d, the diagonal drawn)."""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import matplotlib.ticker

from benchmark.studies.predict.experiment import REAL_METHODS, Prediction, agreement

COLUMNS = ["model", "t", "D", "N", "C", "route", "rank", "initial_loss", "floor", "lambda_max", "trace", "kind",
           "eps_fraction", "eps", "predicted_d", "predicted_se", "linearized_d",
           *[f"real_d90_{m}" for m in REAL_METHODS], *[f"real_d90_{m}_above" for m in REAL_METHODS],
           "real_d90_at_theta0", "best_val_accuracy", "drift_distance", "drift_ntk_change", "drift_test_accuracy"]


def _num(x: float) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else ("inf" if x == math.inf else f"{x:.6g}")


def _drift(p: Prediction) -> list[str]:
    d = p.drift
    return [_num(d.distance), _num(d.ntk_change), _num(d.test_accuracy)] if d else ["", "", ""]


def to_csv(predictions: list[Prediction]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for p in predictions:
        for t in p.thresholds:
            real = [_num(source.get(m, math.nan)) if t.kind == "target90" else ""
                    for source in (p.real, p.real_above) for m in REAL_METHODS]
            w.writerow([p.model, p.t, p.D, p.N, p.C, p.route, p.rank, _num(p.initial_loss), _num(p.floor),
                        _num(p.lambda_max), _num(p.trace), t.kind, _num(t.fraction), _num(t.eps),
                        _num(t.predicted), _num(t.predicted_se), _num(t.linearized), *real,
                        ";".join(sorted(p.real_at_theta0)) if t.kind == "target90" else "", _num(p.best_accuracy),
                        *_drift(p)])
    return buf.getvalue()


def _d(x: float, se: float = 0.0) -> str:
    """A threshold d for the table; se: its Monte Carlo standard error, > 0 where a 0 is the clamp of a
    statistical dimension estimated above r (ε just below the anchor's loss) rather than θ = 0 itself."""
    if math.isnan(x):
        return "—"
    if x == math.inf:
        return "unreachable"
    if x == 0:
        return (f"0 ± {se:,.0f}" if se >= 10 else f"0 ± {se:.1f}") if se > 0 else "0 (θ = 0)"
    return f"{x:,.0f}"


def _real(p: Prediction) -> str:
    """The real network's d*90 for the prediction's anchor: a number, a lower bound, or its anchor alone."""
    if p.real_d90:
        method, d = p.real_d90
        return _d(d) + ("" if method == "random_affine" else " (burn-in affine)")
    above = next((p.real_above[m] for m in p.methods if m in p.real_above), None)
    if above:
        return f"> {above:,.0f} (not reached)"
    return "θ = 0 reaches it" if p.real_at_theta0 & set(p.methods) else "—"


def to_markdown(predictions: list[Prediction], settings_line: str) -> str:
    fractions = [t.fraction for t in predictions[0].thresholds if t.kind == "fraction"]
    burn_in = any(p.t for p in predictions)
    drifts = any(p.drift for p in predictions)
    L0 = "L(w_t)" if burn_in else "L0"
    head = ["model", *(["t"] if burn_in else []), "D", "route", "rank r", f"floor / {L0}",
            *[f"d(ε={f:g} {L0}) pred / lin" for f in fractions], f"ε90 / {L0}", "d*90 pred / lin",
            "real d*90 (random affine)", "pred / real",
            *(["‖w_T − w0‖/‖w0‖" if not burn_in else "‖w_T − w_t‖/‖w_t‖", "NTK change"] if drifts else []), "s"]
    lines = [settings_line, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in predictions:
        cells = [p.model, *([str(p.t)] if burn_in else []), f"{p.D:,}", p.route, f"{p.rank:,}",
                 f"{p.floor / p.initial_loss:.3f}"]
        cells += [f"{_d(t.predicted, t.predicted_se)} / {_d(t.linearized)}" for t in p.thresholds if t.kind == "fraction"]
        t = p.d90
        real = p.real_d90[1] if p.real_d90 else math.nan
        cells += [f"{t.fraction:.3f}", f"{_d(t.predicted, t.predicted_se)} / {_d(t.linearized)}", _real(p),
                  f"{t.predicted / real:.2f}" if math.isfinite(real) and 0 < t.predicted < math.inf else "—"]
        if drifts:
            cells += [f"{p.drift.distance:.2f}", f"{p.drift.ntk_change:.2f}"] if p.drift else ["—", "—"]
        cells.append(f"{p.seconds:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    for at_wt, what in ((False, "random-affine d*90"), (True, "burn-in affine d*90 at the same t")):
        a = agreement(predictions, burn_in=at_wt)
        if a.get("models"):
            rho = f"Spearman rank correlation {_num(a['spearman'])}, " if a["models"] >= 3 else ""
            lines += ["", (f"Against the real networks' {what} ({a['models']} models): {rho}predicted / real: "
                          f"median {a['median_ratio']:.2f}, worst {a['worst_ratio']:.2f}; the prediction is at or "
                          f"above the real threshold on {a['at_or_above']} of {a['models']}.")]
        if a.get("theta0_both"):
            lines += ["", (f"At {a['theta0_both']} anchor(s) both the prediction (d within two Monte Carlo standard "
                          f"errors of 0) and the real runs say that θ = 0, the anchor alone, reaches the target.")]
    lines += ["", ("rank r: eigenvalues of H above 1e-10 λ_max (exact route) or above 1e-5 λ_max (slq, whose Ritz "
                   "values resolve no smaller ones; what lies below holds little of the loss). "
                   "pred: r − δ(C_r), the cone's statistical dimension (Monte Carlo); lin: the linearized network's "
                   "threshold measured exactly (P_s = 1/2 over Haar-random subspaces), — where not measured; "
                   "unreachable: ε is below the floor L_min; 0 (θ = 0): the anchor is already below ε; 0 ± se: ε is just "
                   "below the anchor's loss and the Monte Carlo δ(C_r) reached r (the prediction is 0 within se).")
              + (" t: burn-in steps of the anchor w_t (0: w0); ε and the floor are fractions of L(w_t)." if burn_in else "")]
    return "\n".join(lines) + "\n"


def plot(predictions: list[Prediction], path: Path) -> Path:
    """Predicted d against measured d: the linearized network (every ε, circles) and the real network's
    d*90 (random affine, squares; burn-in affine, triangles), log-log, the diagonal drawn."""
    fig, ax = plt.subplots(figsize=(6.2, 5.2), dpi=110)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    values = []
    for i, p in enumerate(predictions):
        c = colors[i % len(colors)]
        lin = [(t.linearized, t.predicted) for t in p.thresholds if math.isfinite(t.linearized) and math.isfinite(t.predicted)
               and t.linearized > 0 and t.predicted > 0]
        if lin:
            ax.scatter(*zip(*lin), marker="o", facecolors="none", edgecolors=c, s=36)
        for method, marker in zip(REAL_METHODS, ("s", "^")):
            if method in p.real and 0 < p.d90.predicted < math.inf:
                ax.scatter([p.real[method]], [p.d90.predicted], marker=marker, color=c, s=44)
                lin.append((p.real[method], p.d90.predicted))
        ax.plot([], [], marker="s", ls="", color=c, label=f"{p.model}{f' at t = {p.t}' if p.t else ''} (D = {p.D:,})")  # one legend entry per model
        values += [v for pair in lin for v in pair]
    if values:
        lo, hi = min(values) / 1.5, max(values) * 1.5
        ax.plot([lo, hi], [lo, hi], color="0.4", lw=1, ls="--", label="predicted = measured")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):  # plain numbers at the decades and their halves, none between
            axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
            axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    else:  # the slq route measures nothing itself: a plot appears once --compare gives real thresholds
        ax.text(0.5, 0.5, "nothing measured to compare with\n(--compare a committed result)", ha="center",
                va="center", transform=ax.transAxes)
    ax.set_xlabel("measured d\n○ linearized network, every ε;  ■ real network's d*90 (random affine)"
                  + (";  ▲ burn-in affine" if any(p.t for p in predictions) else ""))
    ax.set_ylabel("predicted d = r − δ(C_r)")
    ax.set_title("Threshold dimension predicted from the curvature at w0"
                 + (" and w_t" if any(p.t for p in predictions) else ""))
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
