"""`python -m benchmark theory [OPTIONS]`: parse the options, run the study (experiment), write its report
and provenance, log it to MLflow."""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from benchmark.core.errors import UserError
from benchmark.core.overrides import parse, shared
from benchmark.runner import interrupts, provenance, tracking
from benchmark.studies.theory import experiment
from benchmark.studies.theory.experiment import CHECKED_FROM_D, TheorySettings, study, width_exponents, worst_errors
from benchmark.studies.theory.report import plot_heatmaps, plot_widths, to_csv, to_markdown
from subspaces.theory.quadratic import SPECTRA


def _parse(argv: list[str]) -> tuple[TheorySettings, argparse.Namespace]:
    d = TheorySettings()
    ap = argparse.ArgumentParser(prog="python -m benchmark theory", description=experiment.__doc__,
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
    shared(ap, experiment="theory")
    args = parse(ap, argv)
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
