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


def _parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmark invariance", description=experiment.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=DEFAULT_MODELS, help="family:spec, fc:WIDTHxDEPTH or conv:C1-C2")
    axis.add_options(ap, "invariance", DEFAULT_METHODS, PRESETS)
    shared(ap, experiment="invariance")
    args = parse(ap, argv)
    return parse(ap, argv) if axis.apply_preset(ap, args, PRESETS) else args


def main(argv: list[str]) -> int:
    try:
        args = _parse(argv)
        todo = points(args.models)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.preset:
        print(f"preset {args.preset}: {len(todo)} models, meant for a GPU (on a 2-core CPU, hours per model at "
              f"this scale)", flush=True)

    def report(rows, measured, out: Path):
        spread = spreads(rows)
        md = to_markdown(rows, spread, axis.settings_text("invariance", argv, args, measured, ""))
        (out / "invariance.md").write_text(md)
        (out / "invariance.csv").write_text(axis.to_csv([r for r in rows if r.fraction == FRACTION], "model"))
        metrics = {f"slope.{s.method}": s.slope for s in spread if not math.isnan(s.slope)}
        metrics |= {f"spread.{s.method}": s.spread for s in spread if s.spread}
        return [out / "invariance.md", out / "invariance.csv", plot(rows, out / "invariance.png")], metrics, md

    common = axis.common_overrides(args, study=STUDY_OVERRIDES)
    return axis.execute("invariance", argv, args, todo, common, [FRACTION], report)
