"""`python -m benchmark bench [OPTIONS]`: parse the options, run the timings (experiment), print the
tables (report); logs nothing."""
from __future__ import annotations

import argparse
import json
import sys

import torch

from benchmark.core.errors import UserError
from benchmark.core.overrides import parse, shared
from benchmark.runner.context import resolve_device
from benchmark.studies.bench import experiment
from benchmark.studies.bench.experiment import (
    BENCH_INPUTS,
    DIMS,
    POPULATION_K,
    PROJECTIONS,
    bench_grouped,
    bench_on_the_fly,
    bench_population,
    bench_projections,
)
from benchmark.studies.bench.report import grouped_table, on_the_fly_table, population_table, projection_table

# What each --kind measures: one line of its help; the tables print in this order.
KINDS = {"projection": "each projection's step against the plain one (--model, --dims, --projections)",
         "on_the_fly": "peak memory of a dense projection regenerated every step (--model, --dims)",
         "population": "K members batched against stepped one by one (--population-model, --population-k)",
         "grouped": "a conv net's population forward+backward: vmap against grouped convolutions "
                    "(--population-model, --population-k)"}


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m benchmark bench", description=experiment.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="lenet_300_100", choices=sorted(BENCH_INPUTS))
    ap.add_argument("--batch", type=int, default=128)
    shared(ap, tracking=False, device="auto")
    ap.add_argument("--kind", default="projection,population",
                    help="comma-separated, of: " + "; ".join(f"{k}: {v}" for k, v in KINDS.items())
                    + " (default: projection,population)")
    ap.add_argument("--dims", default=",".join(map(str, DIMS)), help="subspace dimensions d, comma-separated")
    ap.add_argument("--projections", default=",".join(PROJECTIONS))
    ap.add_argument("--population-model", default="mlp", choices=sorted(BENCH_INPUTS))
    ap.add_argument("--population-k", default=",".join(map(str, POPULATION_K)))
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--json", action="store_true", help="one JSON object per line instead of tables")
    return ap


def _validated(args: argparse.Namespace):
    """(device, kinds, projections, dims, ks) from the options, or UserError / ValueError."""
    device = resolve_device(args.device)
    kinds = [k.strip() for k in args.kind.split(",") if k.strip()]
    for k in kinds:
        if k not in KINDS:
            raise UserError(f"unknown bench kind {k!r}; accepted: {', '.join(KINDS)}")
    projections = [p.strip() for p in args.projections.split(",") if p.strip()]
    for p in projections:
        if p not in PROJECTIONS:
            raise UserError(f"unknown projection {p!r}; accepted: {', '.join(PROJECTIONS)}")
    dims = [int(v) for v in args.dims.split(",")]
    ks = [int(v) for v in args.population_k.split(",")]
    if args.batch < 1 or min(dims) < 1 or min(ks) < 1:
        raise UserError("--batch, --dims and --population-k take whole numbers >= 1")
    return device, kinds, projections, dims, ks


def main(argv: list[str]) -> int:
    args = parse(_parser(), argv)
    try:
        device, kinds, projections, dims, ks = _validated(args)
    except ValueError as e:
        print(f"error: {e}; --dims and --population-k take comma-separated whole numbers", file=sys.stderr)
        return 2
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    torch.set_grad_enabled(True)
    emit = (lambda r: print(json.dumps(r) if isinstance(r, dict) else r, flush=True)) if args.json else \
        (lambda r: print(r, file=sys.stderr, flush=True) if isinstance(r, str) else None)
    show = (lambda text: None) if args.json else (lambda text: print(text, flush=True))
    show(f"# device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    if "projection" in kinds:
        rows = bench_projections(args.model, args.batch, device, dims, projections, args.repeats, emit)
        if rows:
            show(projection_table(rows, args.model, args.batch, device))
    if "on_the_fly" in kinds:
        rows = bench_on_the_fly(args.model, args.batch, device, dims, emit=emit)
        if rows:
            show(on_the_fly_table(rows, args.model, args.batch, device))
    if "population" in kinds:
        rows = bench_population(args.population_model, args.batch, device, ks, repeats=args.repeats, emit=emit)
        if rows:
            show(population_table(rows, args.population_model, args.batch, device))
    if "grouped" in kinds:
        try:
            rows = bench_grouped(args.population_model, args.batch, device, ks, repeats=args.repeats, emit=emit)
        except ValueError as e:  # a model grouped_forward cannot run (no conv net of plain layers)
            print(f"error: --population-model {args.population_model}: {e}", file=sys.stderr)
            return 2
        show(grouped_table(rows, args.population_model, args.batch, device))
    return 0
