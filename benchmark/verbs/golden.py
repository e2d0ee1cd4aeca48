"""`python -m benchmark golden [--update]`: the reproducibility check CI runs.

Runs `preset=smoke` into a throw-away MLflow store and compares its leaderboard with the committed
golden one in leaderboards/results/smoke/, failing (exit 1) with a readable diff when a number moved
beyond the tolerance in leaderboards/golden.py. `--update` rewrites the golden files instead: run it
when a change is meant to move the numbers, and commit the result with the reason.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from pathlib import Path

import leaderboards
from benchmark.config.build import build_config
from benchmark.config.compose import compose
from benchmark.core.overrides import parse
from benchmark.runner import provenance
from benchmark.runner.run import run
from leaderboards import to_csv
from leaderboards.golden import TOLERANCES, compare

GOLDEN_DIR = Path(leaderboards.__file__).parent / "results" / "smoke"


COMMAND = "python -m benchmark golden --update"


def smoke_leaderboard(tmp: str, golden_dir: Path, update: bool):
    """The smoke preset's leaderboard, run into a throw-away store with the golden run's memory budget
    (it decides which members share a population, and so their rounding); update: written to golden_dir
    with its provenance.json and findings.json."""
    overrides = ["preset=smoke", f"tracking.uri=sqlite:///{tmp}/golden.db", "tracking.experiment=golden", "force=true"]
    recorded = golden_dir / provenance.FILE
    if recorded.is_file() and not update:
        overrides.append(f"memory_budget_mb={provenance.read(golden_dir)['memory_budget_mb']}")
    if update:
        overrides.append(f"out={golden_dir}")
    print("running preset=smoke into a throw-away store (about 40 s on a 2-core CPU)...", file=sys.stderr, flush=True)
    log = io.StringIO()  # the run's own report names a store that is deleted afterwards
    return run(build_config(compose(overrides)), out=log, command=COMMAND)["leaderboard"]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmark golden", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--update", action="store_true", help="rewrite the golden files from this run")
    ap.add_argument("--golden", default=str(GOLDEN_DIR), help="folder of the golden leaderboard")
    args = parse(ap, argv)
    golden_dir = Path(args.golden)
    if not args.update and not (golden_dir / "leaderboard.csv").is_file():
        print(f"error: no golden leaderboard at {golden_dir / 'leaderboard.csv'}; create it with "
              f"`python -m benchmark golden --update`", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("DOFBENCH_CACHE", os.path.join(tmp, "cache"))  # nothing reused from earlier runs
        lb = smoke_leaderboard(tmp, golden_dir, args.update)
    new = to_csv(lb)
    if args.update:
        print(f"golden leaderboard written to {golden_dir}/ (commit it with the reason the numbers moved)")
        return 0
    diffs = compare((golden_dir / "leaderboard.csv").read_text(), new)
    if diffs:
        print(f"the smoke leaderboard moved beyond tolerance ({TOLERANCES}):",
              file=sys.stderr)
        print("\n".join("  " + d for d in diffs), file=sys.stderr)
        print("if the change is intended: python -m benchmark golden --update, and commit the new golden files",
              file=sys.stderr)
        return 1
    print(f"smoke leaderboard matches the golden one in {golden_dir}/ "
          f"({TOLERANCES})")
    return 0
