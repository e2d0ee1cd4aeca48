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


def _parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmark burnin", description=experiment.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--t", type=int, nargs="+", default=DEFAULT_T, help="burn-in times, in full-space steps")
    ap.add_argument("--fractions", type=float, nargs="+", default=FRACTIONS,
                    help="targets ε as fractions of the reference's test accuracy (0.9: d*90)")
    ap.add_argument("--model", default="fc:100x2", help="family:spec as the invariance study's models (fc:100x2: "
                                                          "the default MLP's 100-100 hidden layers)")
    axis.add_options(ap, "burnin", DEFAULT_METHODS, PRESETS)
    shared(ap, experiment="burnin")
    args = parse(ap, argv)
    return parse(ap, argv) if axis.apply_preset(ap, args, PRESETS) else args


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
    if args.preset:
        print(f"preset {args.preset}: {len(todo)} burn-in times, meant for a GPU", flush=True)

    def report(rows, measured, out: Path):
        found = falls(rows)
        what = f", model {args.model} (D = {measured[0].D:,})"
        md = to_markdown(rows, found, axis.settings_text("burnin", argv, args, measured, what))
        (out / "burnin.md").write_text(md)
        (out / "burnin.csv").write_text(axis.to_csv(rows, "t"))
        metrics = {f"d90.{r.method}.t{r.value:g}": r.d for r in rows if r.fraction == FRACTION and r.d}
        files = [out / "burnin.md", out / "burnin.csv", plot(rows, out / "burnin.png"),
                 plot_eps(rows, out / "burnin_eps.png")]
        return files, metrics, md

    common = axis.common_overrides(args, model, STUDY_OVERRIDES)
    return axis.execute("burnin", argv, args, todo, common, sorted(set(args.fractions) | {FRACTION}), report)
