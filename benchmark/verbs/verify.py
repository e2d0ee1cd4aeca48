"""`python -m benchmark verify FOLDER`: re-run a committed result from its own provenance.json and compare.

The re-run uses the recorded config (memory budget included: it decides which members share a batched
kernel call) in a scratch MLflow store and a throw-away cache (the preparation cache is keyed by
config, not code, so a warm one would hide a change), and never touches the user's store, cache or the
checkout. Then every cell of the folder's CSVs and every entry of findings.json is compared with the
committed one (leaderboards.compare): on the machine that made the result (CPU model, versions,
kernel settings) they must be identical; on another, within the measured rounding band. Exit 0: it
reproduces; 1: something moved outside the tolerance; 2: a bad FOLDER.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmark.config.build import RunConfig
from benchmark.core.errors import UserError
from benchmark.core.overrides import parse
from benchmark.data.vision import LOADERS as VISION_LOADERS
from benchmark.runner import provenance
from benchmark.runner.run import run
from benchmark.verbs import VERBS
from leaderboards.compare import ROUNDING_BAND, compare_folders, table


def rerun(recorded: dict, scratch: Path, log) -> Path:
    """Run the recorded config (a `run`) or argv (a study) into scratch/ (store, cache, result folder);
    returns the result folder."""
    result = scratch / "result"
    before, cwd = os.environ.get("DOFBENCH_CACHE"), os.getcwd()
    user_datasets = None if before is None else Path(before).resolve() / "datasets"
    os.environ["DOFBENCH_CACHE"] = str(scratch / "cache")
    os.chdir(scratch)  # MLflow puts a SQLite store's artifacts in ./mlruns: here, not in the user's folder
    try:
        if recorded.get("verb", "run") == "run":
            _rerun_run(recorded, scratch, result, log, user_datasets)
        else:
            _rerun_study(recorded, scratch, result)
    finally:
        os.chdir(cwd)
        if before is None:
            os.environ.pop("DOFBENCH_CACHE", None)
        else:
            os.environ["DOFBENCH_CACHE"] = before
    return result


def _rerun_run(recorded: dict, scratch: Path, result: Path, log, user_datasets: Path | None) -> None:
    cfg = RunConfig.from_dict(recorded["config"])
    dataset = dict(cfg.dataset)
    if dataset.get("name") in VISION_LOADERS and not dataset.get("root"):  # the user's files, not the scratch cache
        dataset["root"] = str(user_datasets or Path.home() / ".cache" / "dofbench" / "datasets")
    cfg = dataclasses.replace(cfg, dataset=dataset, tracking_uri=f"sqlite:///{scratch}/verify.db",
                              experiment="verify", force=True, out=str(result))
    run(cfg, out=log, command=recorded.get("command"))


def _rerun_study(recorded: dict, scratch: Path, result: Path) -> None:
    """A study's own verb with its recorded arguments; the last --out and --tracking-uri win (argparse)."""
    verb = recorded["verb"]
    module, function = VERBS[verb][0].split(":")
    argv = [*recorded["argv"], "--out", str(result), "--tracking-uri", f"sqlite:///{scratch}/verify.db"]
    with contextlib.redirect_stdout(sys.stderr):  # its report is the re-run's; the comparison is ours
        code = getattr(importlib.import_module(module), function)(argv)
    if code != 0:
        raise UserError(f"the re-run of `{recorded.get('command')}` exited {code}")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmark verify", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", help="a result folder with provenance.json, e.g. leaderboards/results/mnist1d-mlp")
    ap.add_argument("--json", metavar="FILE", help="also write every compared value that moved to FILE")
    ap.add_argument("--keep", metavar="DIR", help="keep the re-run's result folder in DIR (default: deleted)")
    ap.add_argument("--accept", action="store_true",
                    help="when it reproduces, record today's code fingerprint in FOLDER/provenance.json (after a "
                         "change that moved none of its numbers, e.g. a refactor)")
    args = parse(ap, argv)
    folder = Path(args.folder)
    try:
        recorded = provenance.read(folder)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    differs = provenance.same_machine(recorded, provenance.machine())
    band = ROUNDING_BAND if differs else None
    print(f"verify {folder}: re-running `{recorded.get('command')}` from commit "
          f"{(recorded.get('commit') or 'unknown')[:12]} (recorded wall time "
          f"{sum(recorded.get('wall_s', {}).values()) / 60:.0f} min) into a scratch store and cache", flush=True)
    if band is None:
        print("same machine and versions as the committed result: every value must be identical", flush=True)
    else:
        print(f"another machine or versions ({', '.join(f'{k}: {recorded.get(k)} -> {provenance.machine().get(k)}' for k in differs)}): "
              f"applying the {band.text()}", flush=True)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dofbench-verify-") as tmp:
        try:
            result = rerun(recorded, Path(tmp), sys.stderr)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        moved, compared = compare_folders(folder, result, band)
        if args.keep:
            shutil.copytree(result, args.keep, dirs_exist_ok=True)
    outside = [m for m in moved if not m.ok]
    if args.json:
        Path(args.json).write_text(json.dumps([dataclasses.asdict(m) for m in moved], indent=1) + "\n")
    print(f"\ncompared {compared:,} values of {folder} in {time.perf_counter() - t0:.0f}s: "
          f"{compared - len(moved):,} identical, {len(moved) - len(outside):,} moved within tolerance, "
          f"{len(outside):,} outside")
    if moved:
        print(table(moved))
    if outside:
        print(f"\n{folder} does not reproduce: {len(outside)} value(s) moved outside "
              f"{'identity (same machine)' if band is None else band.text()}. If the change is meant to move them, "
              f"re-publish: {recorded.get('command')}, and update the README's words about them in the same commit",
              file=sys.stderr)
        return 1
    print(f"{folder} reproduces" + (" bit for bit" if band is None and not moved else ""))
    if args.accept:
        recorded.update(code=provenance.code_fingerprint(), verified={
            **provenance.git_commit(), "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "identical": not moved, **provenance.cpu()})
        provenance.write(folder, recorded)
        print(f"recorded today's code fingerprint in {folder / provenance.FILE}")
    return 0
