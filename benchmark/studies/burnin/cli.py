"""`python -m benchmark burnin [OPTIONS]`: parse the options, run every burn-in time as one point of the
study (benchmark.studies.axis), write the report, plots and provenance."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmark.core.errors import UserError
from benchmark.core.overrides import parse, shared
from benchmark.studies import axis
from benchmark.studies.axis import model_spec
from benchmark.studies.burnin import experiment
from benchmark.studies.burnin.experiment import (
    DEFAULT_METHODS,
    DEFAULT_T,
    FRACTION,
    FRACTIONS,
    PRESETS,
    STUDY_OVERRIDES,
    falls,
    points,
)
from benchmark.studies.burnin.report import plot, plot_eps, to_markdown


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m benchmark burnin", description=experiment.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default=None, choices=sorted(PRESETS),
                    help="the paper's scale, for a GPU (options given as well win)")
    ap.add_argument("--t", type=int, nargs="+", default=DEFAULT_T, help="burn-in times, in full-space steps")
    ap.add_argument("--fractions", type=float, nargs="+", default=FRACTIONS,
                    help="targets ε as fractions of the reference's test accuracy (0.9: d*90)")
    ap.add_argument("--dataset", default="digits", help="a `run` dataset")
    ap.add_argument("--model", default="fc:100x2", help="family:spec as the invariance study's models: fc:WIDTHxDEPTH "
                                                          "(fc:100x2 is the default MLP, 64-100-100-10 on digits) "
                                                          "or conv:C1-C2")
    ap.add_argument("--methods", nargs="+", default=DEFAULT_METHODS, help="`run` methods; full is the reference")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--ratios", type=float, nargs="+", default=[4, 16, 64, 256, 1024],
                    help="D/d at every t (then one extension wave)")
    ap.add_argument("--epochs", type=int, default=None, help="every member's budget (default: run's, 30)")
    axis.add_options(ap, "burnin")
    shared(ap, experiment="burnin")
    return ap


def _parse(argv: list[str]) -> argparse.Namespace:
    ap = _parser()
    args = parse(ap, argv)
    if args.preset:  # the preset's values become the defaults; what the command line gives still wins
        ap.set_defaults(**PRESETS[args.preset])
        args = parse(ap, argv)
    return args


def main(argv: list[str]) -> int:
    try:
        args = _parse(argv)
        todo = points(args.t)
        model = model_spec(args.model)[1]
        bad = [f for f in args.fractions if not 0 < f <= 1]
        if bad:
            raise UserError(f"target fraction {bad[0]:g} is out of range; accepted: 0 < ε <= 1, e.g. 0.5 0.9")
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    fractions = sorted(set(args.fractions) | {FRACTION})
    if "full" not in args.methods:
        args.methods = ["full", *args.methods]
    common = [f"dataset={args.dataset}", *model, f"methods=[{','.join(args.methods)}]",
              f"seeds=[{','.join(map(str, args.seeds))}]", f"ratios=[{','.join(f'{r:g}' for r in args.ratios)}]",
              *STUDY_OVERRIDES, *([f"epochs={args.epochs}"] if args.epochs else []), *args.set]
    if args.preset:
        print(f"preset {args.preset}: {len(todo)} burn-in times, meant for a GPU", flush=True)

    def report(rows, measured, out: Path):
        found = falls(rows)
        settings = (f"Regenerate: `{' '.join(['python -m benchmark burnin', *argv])}`; dataset {args.dataset}, "
                    f"model {args.model} (D = {measured[0].D:,}), seeds {args.seeds}, D/d {args.ratios} (and one "
                    f"extension wave), epochs {args.epochs or 30}; wall time per t: "
                    + ", ".join(f"{m.point.label} {m.wall_s / 60:.1f} min" for m in measured)
                    + " (members already FINISHED in the store are reused, not retrained).")
        md = to_markdown(rows, found, settings)
        (out / "burnin.md").write_text(md)
        (out / "burnin.csv").write_text(axis.to_csv(rows, "t"))
        metrics = {f"d90.{r.method}.t{r.value:g}": r.d for r in rows if r.fraction == FRACTION and r.d}
        files = [out / "burnin.md", out / "burnin.csv", plot(rows, out / "burnin.png"),
                 plot_eps(rows, out / "burnin_eps.png")]
        return files, metrics, md

    return axis.execute("burnin", argv, args, todo, common, fractions, report)
