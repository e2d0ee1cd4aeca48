"""`python -m benchmark invariance [OPTIONS]`: parse the options, run every model of the family as one
point of the study (benchmark.studies.axis), write the report, plot and provenance."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from benchmark.core.errors import UserError
from benchmark.core.overrides import parse, shared
from benchmark.studies import axis
from benchmark.studies.invariance import experiment
from benchmark.studies.invariance.experiment import (
    DEFAULT_METHODS,
    DEFAULT_MODELS,
    FRACTION,
    PRESETS,
    STUDY_OVERRIDES,
    points,
    spreads,
)
from benchmark.studies.invariance.report import plot, to_markdown


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m benchmark invariance", description=experiment.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default=None, choices=sorted(PRESETS),
                    help="the papers' scale, for a GPU: its models, dataset, methods, ratios and epochs "
                         "(options given as well win)")
    ap.add_argument("--models", nargs="+", default=DEFAULT_MODELS, help="family:spec, fc:WIDTHxDEPTH or conv:C1-C2")
    ap.add_argument("--dataset", default="digits", help="every model's dataset (a `run` dataset)")
    ap.add_argument("--methods", nargs="+", default=DEFAULT_METHODS, help="`run` methods; full is the reference")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--ratios", type=float, nargs="+", default=[4, 16, 64, 256, 1024],
                    help="D/d of every model (then one extension wave)")
    ap.add_argument("--epochs", type=int, default=None, help="every member's budget (default: run's, 30)")
    axis.add_options(ap, "invariance")
    shared(ap, experiment="invariance")
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
        todo = points(args.models)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if "full" not in args.methods:
        args.methods = ["full", *args.methods]  # every threshold is against the model's own reference
    common = [f"dataset={args.dataset}", f"methods=[{','.join(args.methods)}]",
              f"seeds=[{','.join(map(str, args.seeds))}]", f"ratios=[{','.join(f'{r:g}' for r in args.ratios)}]",
              *STUDY_OVERRIDES, *([f"epochs={args.epochs}"] if args.epochs else []), *args.set]
    if args.preset:
        print(f"preset {args.preset}: {len(todo)} models, meant for a GPU (on a 2-core CPU, hours per model at "
              f"this scale)", flush=True)

    def report(rows, measured, out: Path):
        spread = spreads(rows)
        settings = (f"Regenerate: `{' '.join(['python -m benchmark invariance', *argv])}`; dataset {args.dataset}, seeds {args.seeds}, D/d {args.ratios} (and one extension wave), "
                    f"epochs {args.epochs or 30}; wall time per model: "
                    + ", ".join(f"{m.point.label} {m.wall_s / 60:.1f} min" for m in measured)
                    + " (members already FINISHED in the store are reused, not retrained).")
        md = to_markdown(rows, spread, settings)
        (out / "invariance.md").write_text(md)
        (out / "invariance.csv").write_text(axis.to_csv([r for r in rows if r.fraction == FRACTION], "model"))
        metrics = {f"slope.{s.method}": s.slope for s in spread if not math.isnan(s.slope)}
        metrics |= {f"spread.{s.method}": s.spread for s in spread if s.spread}
        return [out / "invariance.md", out / "invariance.csv", plot(rows, out / "invariance.png")], metrics, md

    return axis.execute("invariance", argv, args, todo, common, [FRACTION], report)
