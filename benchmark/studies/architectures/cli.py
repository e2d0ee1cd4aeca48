"""`python -m benchmark architectures [OPTIONS]`: parse the options, run each job's grid through the
runner (experiment), write the report and provenance."""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from benchmark.config.build import build_config
from benchmark.config.compose import compose
from benchmark.core.errors import UserError
from benchmark.core.overrides import parse, shared
from benchmark.data.registry import load_dataset
from benchmark.data.text import unigram_bits
from benchmark.runner import provenance, tracking
from benchmark.runner.context import resolve_device
from benchmark.runner.memory import default_memory_budget
from benchmark.runner.run import run
from benchmark.studies.architectures import experiment
from benchmark.studies.architectures.experiment import (
    MNIST1D_MODELS,
    STUDY_OVERRIDES,
    common_thresholds,
    jobs,
    lr_edges,
    rows_of,
)
from benchmark.studies.architectures.report import to_csv, to_markdown
from leaderboards.source import records_from_mlflow


def _parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmark architectures", description=experiment.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(MNIST1D_MODELS), help=f"of {', '.join(MNIST1D_MODELS)}")
    ap.add_argument("--no-text", action="store_true", help="skip the character-level text job")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--ratios", type=float, nargs="+", default=[2, 8])
    ap.add_argument("--epochs", type=int, default=None, help="every job's (default: 30 on MNIST-1D, 4 on text)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="more `run` overrides for every job")
    ap.add_argument("--out", default="architectures", help="folder for architectures.md and .csv")
    shared(ap)
    return parse(ap, argv)


def main(argv: list[str]) -> int:
    try:
        return _main(argv)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _main(argv: list[str]) -> int:
    meter = provenance.StageMeter()
    args = _parse(argv)
    bad = [m for m in args.models if m not in MNIST1D_MODELS]
    if bad:
        raise UserError(f"unknown model {', '.join(bad)}; accepted: {', '.join(MNIST1D_MODELS)}")
    uri = tracking.resolve_uri(args.tracking_uri)
    common = [f"seeds=[{','.join(map(str, args.seeds))}]", f"ratios=[{','.join(f'{r:g}' for r in args.ratios)}]",
              f"tracking.uri={uri}", *STUDY_OVERRIDES, *([f"epochs={args.epochs}"] if args.epochs else []), *args.set]
    todo = jobs(args.models, not args.no_text)
    cfgs = [build_config(compose([*job.overrides, *common])) for job in todo]  # every bad value before any work
    if cfgs and cfgs[0].memory_budget_mb is None:  # one budget for every job, recorded: it decides the rounding
        budget = default_memory_budget(resolve_device(cfgs[0].device)) / 2**20
        cfgs = [dataclasses.replace(cfg, memory_budget_mb=budget) for cfg in cfgs]
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot write to --out {str(out)!r}: {e.strerror}") from None
    rows, unigram, times, edges = [], {}, {}, {}
    for job, cfg in zip(todo, cfgs):
        print(f"\n=== {job.name} ===", flush=True)
        start = time.perf_counter()
        result = run(cfg)
        times[job.name] = time.perf_counter() - start
        records = [r for recs in records_from_mlflow(parent_run_id=result["parent_run_id"], tracking_uri=uri).values()
                   for r in recs]
        if job.metric == "bits":
            unigram[job.name] = unigram_bits(load_dataset(cfg.dataset))
        rows += rows_of(job, records, result["leaderboard"].D, unigram.get(job.name))
        edges[job.name] = lr_edges(records)
    target = common_thresholds(rows)
    command = " ".join(["python -m benchmark architectures", *argv])
    settings = (f"Regenerate: `{command}`; seeds {args.seeds}, D/d {args.ratios} (and one extension wave), "
                f"{'epochs ' + str(args.epochs) if args.epochs else '30 epochs on MNIST-1D, 4 on text'}; this "
                f"invocation's wall time (members already FINISHED in the store are reused, not retrained): " +
                ", ".join(f"{k} {v / 60:.1f} min" for k, v in times.items()) + ".")
    (out / "architectures.md").write_text(to_markdown(rows, target, unigram, settings, edges))
    (out / "architectures.csv").write_text(to_csv(rows))
    provenance.write_study(out, "architectures", argv, {"jobs": [cfg.to_dict() for cfg in cfgs]}, meter,
                           cfgs[0].device, memory_budget_mb=cfgs[0].memory_budget_mb,
                           rerun_args=["--set", f"memory_budget_mb={cfgs[0].memory_budget_mb}"])
    print("\n" + to_markdown(rows, target, unigram, settings, edges))
    print(f"wrote {out / 'architectures.md'}, {out / 'architectures.csv'}")
    return 0
