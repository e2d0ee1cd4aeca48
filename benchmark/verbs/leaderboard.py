"""`python -m benchmark leaderboard`: tables and plots from the member runs in MLflow."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import mlflow

from benchmark.core.overrides import parse, shared
from benchmark.runner import tracking
from leaderboards import build, to_text
from leaderboards.source import records_from_mlflow
from leaderboards.write import FORMATS, write


def leaderboard_main(argv: list[str]) -> int:
    """`python -m benchmark leaderboard [--experiment NAME | --run PARENT_RUN_ID] [--out DIR] [--format ...]`."""
    ap = argparse.ArgumentParser(prog="python -m benchmark leaderboard",
                                 description="Leaderboards (tables and plots) from the child runs in MLflow.")
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--experiment", help="every member in this experiment (default: all dofbench experiments)")
    which.add_argument("--run", help="the members of this parent run")
    ap.add_argument("--out", default="leaderboards/results", help="folder; one subfolder per <dataset>-<model>")
    ap.add_argument("--format", default="md,csv,html", help="comma-separated: md, csv, html")
    shared(ap)
    args = parse(ap, argv)

    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        print(f"error: unknown format {','.join(bad) or args.format!r}; accepted: {', '.join(FORMATS)}", file=sys.stderr)
        return 2
    uri = tracking.resolve_uri(args.tracking_uri)
    try:
        if args.run:
            groups = records_from_mlflow(parent_run_id=args.run, tracking_uri=uri)
        elif args.experiment:
            groups = records_from_mlflow(experiment=args.experiment, tracking_uri=uri)
        else:
            mlflow.set_tracking_uri(uri)
            groups = {}
            for exp in mlflow.search_experiments():
                for key, recs in records_from_mlflow(experiment=exp.name, tracking_uri=uri).items():
                    groups.setdefault(key, []).extend(recs)
    except LookupError as e:
        print(f"error: {e.args[0]}", file=sys.stderr)
        return 2
    except Exception as e:  # MLflow's "run not found" and the like
        print(f"error: cannot read runs from {uri!r}: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
              file=sys.stderr)
        return 2
    if not groups:
        print(f"error: no dofbench member runs found in {uri!r}; run `python -m benchmark run` first", file=sys.stderr)
        return 2
    for (dataset, model), records in sorted(groups.items()):
        lb = build(records, dataset, model)
        out = Path(args.out) / f"{dataset}-{model}"
        paths = write(lb, out, formats)
        print(f"\n{dataset} / {model} (D = {lb.D:,}), {len(records)} members:\n{to_text(lb)}")
        print("wrote " + ", ".join(str(p) for p in paths))
    return 0
