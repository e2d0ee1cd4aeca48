"""`python -m benchmark theory`: predicted versus measured threshold dimension on quadratic landscapes.

For each spectrum and D: P_s(d, ε), the exact probability that a Haar-random d-dimensional affine
subspace through w0 reaches L <= ε (least squares over `draws` subspaces, every d at once), and the
two predictions of where it crosses 1/2, D − δ(C) and D − w(C)², each by Monte Carlo over
`samples` Gaussian vectors projected onto the cone C = cone(S(ε) − w0). ε is given as a fraction
of L(w0) (the cone depends on nothing else for a given direction of w0 − w*).
"""
from __future__ import annotations

import argparse
import csv
import functools
import io
import math
import statistics
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from benchmark.errors import UserError
from benchmark.seeds import derive_seed
from subspaces.theory.cones import project, sizes, sublevel_cone
from subspaces.theory.quadratic import (
    SPECTRA,
    crossing,
    landscape,
    min_loss_curves,
    success_probability,
)

# ε/L(w0) of the heatmaps: the measured P_s is free at any ε once the best losses are known.
HEATMAP_FRACTIONS = tuple(round(0.01 * i, 2) for i in range(1, 100))
TOLERANCE = 0.05  # the predictions should land within this fraction of D of the measured crossing
CHECKED_FROM_D = 1000


@dataclass(frozen=True)
class TheorySettings:
    dims: tuple[int, ...] = (250, 500, 1000, 2000)
    spectra: tuple[str, ...] = SPECTRA
    eps: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)  # fractions of L(w0)
    draws: int = 100  # random subspaces per landscape (each gives every d)
    samples: int = 500  # Gaussian vectors per cone size
    alpha: float = 1.0  # power spectrum: λ_i = i^-alpha
    spikes: int = 10  # spiked spectrum: this many eigenvalues of spike_scale over a bulk of 1
    spike_scale: float = 100.0
    distance: float = 1.0  # ‖w0 − w*‖
    seed: int = 0

    def validate(self) -> None:
        bad = [s for s in self.spectra if s not in SPECTRA]
        if bad or not self.spectra:
            raise UserError(f"unknown spectrum {', '.join(bad) or '(none)'}; accepted: {', '.join(SPECTRA)}")
        if not self.dims or min(self.dims) < 20:
            raise UserError(f"--D {list(self.dims)}: dimensions must be whole numbers >= 20")
        if any(self.spikes >= D for D in self.dims) and "spiked" in self.spectra:
            raise UserError(f"--spikes {self.spikes}: must be below every D ({min(self.dims)})")
        if not self.eps or not all(0 < e < 1 for e in self.eps):
            raise UserError(f"--eps {list(self.eps)}: fractions of L(w0) strictly between 0 and 1")
        for name in ("draws", "samples"):
            if getattr(self, name) < 10:
                raise UserError(f"--{name} {getattr(self, name)}: need at least 10")
        if self.alpha <= 0 or self.spike_scale <= 0 or self.spikes < 1 or self.distance <= 0:
            raise UserError(f"--alpha {self.alpha}, --spike-scale {self.spike_scale}, --spikes {self.spikes}, "
                            f"--distance {self.distance}: each must be > 0")


@dataclass(frozen=True)
class Threshold:
    """One (spectrum, D, ε): the measured crossing of P_s and the two predictions, in dimensions d."""

    spectrum: str
    D: int
    eps_fraction: float
    eps: float
    measured: float  # d where P_s reaches 1/2
    measured_10: float  # ... 0.1
    measured_90: float  # ... 0.9
    statistical_dimension: float
    statistical_dimension_se: float
    width: float
    width_se: float
    polar_fraction: float

    @property
    def predicted(self) -> float:
        return self.D - self.statistical_dimension

    @property
    def predicted_gordon(self) -> float:
        return self.D - self.width**2

    @property
    def transition(self) -> float:
        """d at P_s = 0.9 minus d at P_s = 0.1."""
        return self.measured_90 - self.measured_10

    @property
    def error(self) -> float:
        """(D − δ − measured) / D."""
        return (self.predicted - self.measured) / self.D

    @property
    def error_gordon(self) -> float:
        return (self.predicted_gordon - self.measured) / self.D

    def row(self) -> dict:
        out = asdict(self)
        out.update(predicted_statdim=self.predicted, predicted_gordon=self.predicted_gordon,
                   transition=self.transition, error_statdim=self.error, error_gordon=self.error_gordon)
        return out


@dataclass
class Landscape:
    """One spectrum at one D: P_s on the heatmap grid and the thresholds at the settings' ε."""

    spectrum: str
    D: int
    fractions: tuple[float, ...]  # the heatmap's ε / L(w0)
    heatmap: torch.Tensor  # (len(fractions), D + 1): P_s(ε, d)
    thresholds: list[Threshold] = field(default_factory=list)


def study(spectrum: str, D: int, s: TheorySettings) -> Landscape:
    options = {"power": {"alpha": s.alpha}, "spiked": {"spikes": s.spikes, "spike_scale": s.spike_scale}}
    q = landscape(D, spectrum, s.distance, derive_seed(s.seed, "theory", "w0", spectrum, D),
                  **options.get(spectrum, {}))
    L0 = q.initial_loss
    curves = min_loss_curves(q, s.draws, derive_seed(s.seed, "theory", "subspaces", spectrum, D))
    heat = success_probability(curves, torch.tensor(HEATMAP_FRACTIONS, dtype=torch.float64) * L0)
    out = Landscape(spectrum, D, HEATMAP_FRACTIONS, heat)
    probs = success_probability(curves, torch.tensor(s.eps, dtype=torch.float64) * L0)
    for f, p in zip(s.eps, probs):
        cone = sublevel_cone(q, f * L0)
        size = sizes(functools.partial(project, cone), D, s.samples, derive_seed(s.seed, "theory", "cone", spectrum, D, f))
        out.thresholds.append(Threshold(
            spectrum, D, f, f * L0, crossing(p, 0.5), crossing(p, 0.1), crossing(p, 0.9),
            size.statistical_dimension, size.statistical_dimension_se, size.width, size.width_se,
            size.polar_fraction))
    return out


def width_exponents(results: list[Landscape]) -> dict[str, float]:
    """Per spectrum: the median over ε of the least-squares slope of log(transition width) vs log D."""
    out = {}
    for spectrum in dict.fromkeys(r.spectrum for r in results):
        mine = [r for r in results if r.spectrum == spectrum]
        if len({r.D for r in mine}) < 2:
            continue
        slopes = []
        for i in range(len(mine[0].thresholds)):
            pts = [(math.log(r.D), math.log(r.thresholds[i].transition)) for r in mine
                   if math.isfinite(r.thresholds[i].transition) and r.thresholds[i].transition > 0]
            if len(pts) >= 2:
                mx, my = statistics.fmean(p[0] for p in pts), statistics.fmean(p[1] for p in pts)
                slopes.append(sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts))
        if slopes:
            out[spectrum] = statistics.median(slopes)
    return out


def worst_errors(results: list[Landscape], from_D: int = 0) -> dict[str, float]:
    """The largest |prediction − measured| / D over every ε and every D >= from_D, per prediction."""
    rows = [t for r in results if r.D >= from_D for t in r.thresholds]
    if not rows:
        return {}
    return {"statdim": max(abs(t.error) for t in rows), "gordon": max(abs(t.error_gordon) for t in rows)}


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


def _parse(argv: list[str]) -> tuple[TheorySettings, argparse.Namespace]:
    d = TheorySettings()
    ap = argparse.ArgumentParser(prog="python -m benchmark theory", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--D", type=int, nargs="+", default=list(d.dims), help="dimensions (default: %(default)s)")
    ap.add_argument("--spectrum", nargs="+", default=list(d.spectra), help=f"of {', '.join(SPECTRA)} (default: all)")
    ap.add_argument("--eps", type=float, nargs="+", default=list(d.eps), help="ε as fractions of L(w0)")
    ap.add_argument("--draws", type=int, default=d.draws, help="random subspaces per landscape")
    ap.add_argument("--samples", type=int, default=d.samples, help="Gaussian samples per cone size")
    ap.add_argument("--alpha", type=float, default=d.alpha, help="power spectrum exponent")
    ap.add_argument("--spikes", type=int, default=d.spikes, help="spiked spectrum: number of large eigenvalues")
    ap.add_argument("--spike-scale", type=float, default=d.spike_scale)
    ap.add_argument("--distance", type=float, default=d.distance, help="‖w0 − w*‖")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--out", default="theory", help="folder for theory.png, widths.png, theory.md, theory.csv")
    ap.add_argument("--tracking-uri", default=None, help="default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db")
    ap.add_argument("--experiment", default="theory")
    args = ap.parse_args(argv)
    settings = TheorySettings(tuple(args.D), tuple(args.spectrum), tuple(args.eps), args.draws, args.samples,
                              args.alpha, args.spikes, args.spike_scale, args.distance, args.seed)
    return settings, args


def main(argv: list[str]) -> int:
    try:
        return _main(argv)
    except UserError as e:  # bad settings, an unwritable --out, a store that fails (also mid-way): one line
        print(f"error: {e}", file=sys.stderr)
        return 2


def _main(argv: list[str]) -> int:
    from tqdm import tqdm

    from benchmark import interrupts, provenance, tracking
    from leaderboards.theory_plots import plot_heatmaps, plot_widths

    meter = provenance.StageMeter()
    settings, args = _parse(argv)
    interrupts.install()  # Ctrl-C and SIGTERM land between store writes
    out = Path(args.out)
    try:
        settings.validate()
        out.mkdir(parents=True, exist_ok=True)
        uri = tracking.resolve_uri(args.tracking_uri)
        client, exp_id = tracking.open_store(uri, args.experiment)  # fails before any work
    except OSError as e:
        raise UserError(f"cannot write to --out {str(out)!r}: {e.strerror}") from None

    jobs = [(sp, D) for sp in settings.spectra for D in sorted(settings.dims)]
    results, parent = [], None
    try:
        with interrupts.deferred():  # an interrupt here lands after `parent` is known, inside the try
            parent = tracking.start_run(client, exp_id, "theory", tags={"dofbench.kind": "theory"})
        tracking.log_values(client, parent, params={k: (list(v) if isinstance(v, tuple) else v)
                                                    for k, v in asdict(settings).items()})
        for spectrum, D in tqdm(jobs, desc="theory", unit="landscape", file=sys.stderr, dynamic_ncols=True):
            r = study(spectrum, D, settings)
            results.append(r)
            child = tracking.start_run(client, exp_id, f"{spectrum}-D{D}", parent_id=parent)
            metrics = {}
            for t in r.thresholds:
                key = f"eps_{t.eps_fraction:g}"
                metrics.update({f"measured_d50/{key}": t.measured, f"predicted_statdim/{key}": t.predicted,
                                f"predicted_gordon/{key}": t.predicted_gordon, f"transition/{key}": t.transition})
            metrics["worst_error_statdim"] = max(abs(t.error) for t in r.thresholds)
            tracking.log_values(client, child, params={"spectrum": spectrum, "D": D}, metrics=metrics)
            tracking.end_run(client, child)
    except KeyboardInterrupt:
        if parent is not None:
            tracking.end_run(client, parent, "KILLED")
        print("interrupted: the finished landscapes are in MLflow", file=sys.stderr)
        return 130

    (out / "theory.csv").write_text(to_csv(results))
    table = to_markdown(results, settings)
    (out / "theory.md").write_text(f"# Predicted vs measured threshold dimension\n\n{table}")
    files = [out / "theory.csv", out / "theory.md", plot_heatmaps(results, out / "theory.png")]
    if len(settings.dims) > 1:
        files.append(plot_widths(results, out / "widths.png"))
    summary = {f"worst_error_{k}": v for k, v in worst_errors(results).items()}
    summary.update({f"worst_error_{k}/D_{CHECKED_FROM_D}_up": v for k, v in worst_errors(results, CHECKED_FROM_D).items()})
    summary.update({f"width_exponent.{k}": v for k, v in width_exponents(results).items()})
    tracking.log_values(client, parent, metrics=summary)
    for path in files:
        client.log_artifact(parent, str(path), "theory")
    tracking.end_run(client, parent)
    provenance.write_study(out, "theory", argv, {k: (list(v) if isinstance(v, tuple) else v)
                                                 for k, v in asdict(settings).items()}, meter, "cpu")
    print(table)
    print(f"plots and tables in {out}/; runs in MLflow experiment {args.experiment!r}: {tracking.ui_command(uri)}")
    return 0
