"""`python -m benchmark architectures`: is D/d*90 larger for a transformer, and on text?

Jobs, each a whole `python -m benchmark run` (the same protocol: the reference's lr chosen on validation,
every cell's lr on validation, d*90 with its interval, one extension wave) in its own MLflow parent:

  MNIST-1D as a sequence (40 steps of one channel), D matched within ±10%: the MLP (50-50, D = 5,110),
  the 1D CNN (20 channels, D = 4,970) and the transformer (width 16, 10 tokens of 4 steps, D = 4,890); methods:
  full, random affine (one global Fastfood map), SAID (a map and a learned scale per layer), and random
  affine from a pretrained anchor (w0 trained on the permuted task: fine-tuning against from scratch);
  text: full and random affine on the transformer (width 16, 8 tokens of 4 characters) predicting the
  next character from 32 characters of Python's documentation (`pydoc`, 20,000 training windows, 4
  epochs: with 4,000 windows and 30 epochs every lr overfits in loss within 10 epochs). Language
  modelling chooses every lr, the reference's included, on validation loss (data.selection_metric).

Then the comparison: d*90 against each architecture's own reference and against one common target
(90% of the weakest reference, so every architecture can reach it); on text, d*90 on bits per character,
"90%" meaning 90% of the reference's gain over the unigram model: (u − b(d)) >= 0.9 (u − b_ref).
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.errors import UserError

# Small widths (a 2-core CPU), D matched within ±10% of the MLP's 5,110.
MNIST1D_MODELS = {"mlp": ["model=mlp", "model.hidden=[50,50]"],
                  "cnn1d": ["model=cnn1d", "model.channels=20"],
                  "transformer": ["model=transformer", "model.width=16", "model.depth=2", "model.heads=4",
                                  "model.patch=4", "model.mlp_ratio=2"]}
# The last token reads the last 4 characters before the one to predict.
TEXT_MODEL = [*MNIST1D_MODELS["transformer"], "model.pool=last"]
TEXT_DATA = ["dataset=pydoc", "dataset.vocab=48", "dataset.context=32", "dataset.train_windows=20000",
             "dataset.val_windows=2000", "dataset.test_windows=4000", "epochs=4"]
# Four candidate lrs per cell: 0.001-0.03 for the full network (Adam), 0.01-0.3 for θ (SGD), SAID's divided
# by √m (methods.lr_scale); one extension d per method.
STUDY_OVERRIDES = ["lr_grid=[0.1,0.3,1,3]", "extension.max_dims=1"]
SEQUENCE_METHODS = ["full", "random_affine", "said", "pretrained_affine"]
TEXT_METHODS = ["full", "random_affine"]  # SAID is compared on MNIST-1D; text asks only how far D/d*90 goes
FRACTION = 0.9


@dataclass(frozen=True)
class Job:
    name: str
    dataset: str
    model: str
    overrides: tuple[str, ...]
    metric: str  # "accuracy", or "bits": thresholds on bits per character


def jobs(models: list[str], text: bool) -> list[Job]:
    out = [Job(f"mnist1d-{m}", "mnist1d", m, ("dataset=mnist1d", *MNIST1D_MODELS[m], f"methods=[{','.join(SEQUENCE_METHODS)}]"),
               "accuracy") for m in models]
    if text:
        out.append(Job("pydoc-transformer", "pydoc", "transformer",
                       (*TEXT_DATA, *TEXT_MODEL,
                        f"methods=[{','.join(TEXT_METHODS)}]"), "bits"))
    return out


@dataclass
class Row:
    job: str
    dataset: str
    model: str
    D: int
    method: str
    reference: float  # the full network's test accuracy (or bits per character)
    d90: float | None  # against the job's own reference (accuracy) or on bits
    d90_low: float | None
    d90_high: float | None
    d90_common: float | None  # against the common accuracy target (accuracy jobs)
    upper_bound: bool  # reached at the smallest d tested
    curve: dict[float, float]  # d -> seed-mean test accuracy (or bits per character)
    common_upper: bool = False  # the common target is reached at the smallest d tested: d is an upper bound

    @property
    def compression(self) -> float | None:
        return self.D / self.d90 if self.d90 else None


def _curves(records: list[dict], metric: str) -> tuple[dict, dict, list]:
    """{method: (ds ascending, (S, n) matrix)}, {seed: reference value}, seeds: from the selected members."""
    from leaderboards.selection import selected_only

    records = [r for r in selected_only(records) if r["status"] == "FINISHED"]
    seeds = sorted({r["seed"] for r in records})
    value = (lambda r: float(r["test_loss"]) / math.log(2)) if metric == "bits" else (lambda r: float(r["test_acc"]))
    ref = {r["seed"]: value(r) for r in records if r["method"] == "full"}
    out = {}
    for m in dict.fromkeys(r["method"] for r in records if r["method"] != "full"):
        ds = sorted({float(r["d"]) for r in records if r["method"] == m})
        mat = np.full((len(seeds), len(ds)), np.nan)
        for r in records:
            if r["method"] == m:
                mat[seeds.index(r["seed"]), ds.index(float(r["d"]))] = value(r)
        out[m] = (ds, mat)
    return out, ref, seeds


def lr_edges(records: list[dict]) -> dict[str, tuple[str, ...]]:
    """method -> its cells whose lr, selected on validation, is the smallest or largest of their candidates
    (a wider grid might do better there), as "d 639: 0.3 (largest)"."""
    from leaderboards.selection import select

    chosen = select(records)
    out: dict[str, list[str]] = {}
    for (m, ratio), lr in sorted(chosen.items()):
        lrs = sorted({r["lr"] for r in records
                      if r["method"] == m and float(r["ratio"]) == ratio and r["lr"] is not None})
        if len(lrs) > 1 and lr in (lrs[0], lrs[-1]):
            d = next(r["d"] for r in records if r["method"] == m and float(r["ratio"]) == ratio)
            out.setdefault(m, []).append(f"d {d:,}: {lr:g} ({'smallest' if lr == lrs[0] else 'largest'})")
    return {m: tuple(v) for m, v in out.items()}


def rows_of(job: Job, records: list[dict], D: int, unigram: float | None) -> list[Row]:
    """The job's methods: d*90 (with its interval) against its own reference, on accuracy or on bits saved
    over the unigram model (u − b, larger is better, so the accuracy rule applies to it unchanged)."""
    from leaderboards.threshold import dstar

    curves, ref, seeds = _curves(records, job.metric)
    gain = (lambda b: unigram - b) if job.metric == "bits" else (lambda a: a)
    full = np.array([gain(ref[s]) for s in seeds if s in ref])
    out = []
    for m, (ds, mat) in curves.items():
        t = dstar(gain(mat), ds, full, FRACTION)
        out.append(Row(job.name, job.dataset, job.model, D, m, float(np.mean(list(ref.values()))), t.d, t.low, t.high,
                       None, t.upper_bound, {d: float(np.nanmean(mat[:, j])) for j, d in enumerate(ds)}))
    return out


def common_thresholds(rows: list[Row]) -> float:
    """Sets d90_common on every accuracy row: the crossing of its seed-mean curve with 90% of the weakest
    accuracy reference among the jobs. Returns that target."""
    from leaderboards.threshold import crossing

    acc = [r for r in rows if r.dataset == "mnist1d"]
    if not acc:
        return math.nan
    target = FRACTION * min(r.reference for r in acc)
    for r in acc:
        ds = sorted(r.curve)
        r.d90_common = crossing(ds, [r.curve[d] for d in ds], target)
        r.common_upper = r.d90_common is not None and r.curve[ds[0]] >= target  # already at the smallest d
    return target


def _fmt(d: float | None, upper: bool = False) -> str:
    if d is None:
        return "not reached"
    return f"≤ {d:,.0f}" if upper else f"{d:,.0f}"


def _ci(r: Row) -> str:
    if r.d90_low is None or r.upper_bound:
        return ""
    return f" [{r.d90_low:,.0f}, {'open' if r.d90_high is None else f'{r.d90_high:,.0f}'}]"


def _ratio(D: int, d: float | None, upper: bool) -> str:
    return "" if not d else f"{'≥ ' if upper else ''}{D / d:,.1f}"


def to_markdown(rows: list[Row], target: float, unigram: dict[str, float], settings: str,
                edges: dict[str, dict[str, tuple[str, ...]]] | None = None) -> str:
    """The report; edges: job -> lr_edges of its records."""
    lines = ["# Is D/d*90 larger for a transformer?", "", settings, "",
             "## MNIST-1D as a sequence, D matched within ±10%", "",
             f"d*90: the smallest d whose seed-mean test accuracy reaches 90% of the architecture's own full "
             f"network (95% interval over seeds); common: 90% of the weakest reference, {target:.3f}, the same "
             f"target for every architecture.", "",
             "| model | D | full network | method | d*90 [95% CI] | D/d*90 | d at the common target | D/d (common) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.dataset != "mnist1d":
            continue
        lines.append(f"| {r.model} | {r.D:,} | {r.reference:.3f} | {r.method} | {_fmt(r.d90, r.upper_bound)}{_ci(r)} | "
                     f"{_ratio(r.D, r.d90, r.upper_bound)} | {_fmt(r.d90_common, r.common_upper)} | "
                     f"{_ratio(r.D, r.d90_common, r.common_upper)} |")
    text = [r for r in rows if r.dataset != "mnist1d"]
    if text:
        lines += ["", "## Character-level text (next character from 32), transformer", "",
                  "Bits per character on test; d*90: the smallest d that gains 90% of the full network's bits over "
                  "the unigram model (u − b(d) ≥ 0.9 (u − b_ref)).", "",
                  "| dataset | D | unigram | full network | method | d*90 [95% CI] | D/d*90 | bits/char at each d |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in text:
            curve = ", ".join(f"{d:,.0f}: {b:.2f}" for d, b in sorted(r.curve.items()))
            lines.append(f"| {r.dataset} | {r.D:,} | {unigram[r.job]:.3f} | {r.reference:.3f} | {r.method} | "
                         f"{_fmt(r.d90, r.upper_bound)}{_ci(r)} | {_ratio(r.D, r.d90, r.upper_bound)} | {curve} |")
        beaten = [r for r in text if min(r.curve.values()) < r.reference]
        if beaten:  # a subspace member with fewer bits than the full network: suspect the reference first
            lines += ["", f"**Not a valid threshold:** {', '.join(sorted({r.method for r in beaten}))} reach fewer "
                      f"bits per character than the full network ({min(min(r.curve.values()) for r in beaten):.2f} "
                      f"against {beaten[0].reference:.2f}): the reference is not converged or overfits in loss, "
                      f"so 90% of its gain is no target. Train it longer or on more text (dataset.train_windows) "
                      f"before reading d*90 here."]
    if edges and any(edges.values()):
        lines += ["", "## Learning rates chosen at an end of their candidates", "",
                  "Each cell's lr is chosen on validation among the same number of candidates for every method; "
                  "where the choice is the smallest or the largest, a wider grid might do better there.", ""]
        lines += [f"- {job} {m}: {'; '.join(cells)}" for job, per in edges.items() for m, cells in per.items()]
    return "\n".join(lines) + "\n"


def to_csv(rows: list[Row]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["job", "dataset", "model", "D", "method", "reference", "d90", "d90_low", "d90_high", "d90_upper_bound",
                "D_over_d90", "d90_common"])
    for r in rows:
        w.writerow([r.job, r.dataset, r.model, r.D, r.method, r.reference, r.d90, r.d90_low, r.d90_high,
                    r.upper_bound, r.compression, r.d90_common])
    return buf.getvalue()


def _parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmark architectures", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(MNIST1D_MODELS), help=f"of {', '.join(MNIST1D_MODELS)}")
    ap.add_argument("--no-text", action="store_true", help="skip the character-level text job")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--ratios", type=float, nargs="+", default=[2, 8])
    ap.add_argument("--epochs", type=int, default=None, help="every job's (default: 30 on MNIST-1D, 4 on text)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="more `run` overrides for every job")
    ap.add_argument("--out", default="architectures", help="folder for architectures.md and .csv")
    ap.add_argument("--tracking-uri", default=None, help="default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db")
    return ap.parse_args(argv)


def main(argv: list[str]) -> int:
    try:
        return _main(argv)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _main(argv: list[str]) -> int:
    from benchmark import provenance, tracking
    from benchmark.cli import compose
    from benchmark.config import build_config
    from benchmark.context import resolve_device
    from benchmark.grid import default_memory_budget
    from benchmark.data import load_dataset
    from benchmark.run import run
    from benchmark.text import unigram_bits
    from leaderboards.source import records_from_mlflow

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
