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

import math
from dataclasses import dataclass

import numpy as np

from leaderboards.selection import select, selected_only
from leaderboards.threshold import crossing, dstar

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
    acc = [r for r in rows if r.dataset == "mnist1d"]
    if not acc:
        return math.nan
    target = FRACTION * min(r.reference for r in acc)
    for r in acc:
        ds = sorted(r.curve)
        r.d90_common = crossing(ds, [r.curve[d] for d in ds], target)
        r.common_upper = r.d90_common is not None and r.curve[ds[0]] >= target  # already at the smallest d
    return target
