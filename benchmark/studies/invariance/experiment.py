"""`python -m benchmark invariance`: is the threshold dimension a property of the task, not of the network?

Li et al. (2018, Fig. S7): fully connected networks on MNIST, widths 50-400 and depths 1-5, D varying by
more than 10x, have d_int90 within a narrow band. Here every model of a family is one point of a study
(benchmark.studies.axis): a whole `run` (converged reference per model, every lr chosen on validation,
seeds, intervals, the extension wave), and d*90 is measured for every method, not only random affine:
does invariance hold for lottery subspaces, and fail for pruning, whose axis-aligned subspaces may
need more coordinates the larger D?

Models are `family:spec`: `fc:WIDTHxDEPTH` (model=fc, `depth` hidden layers of `width` units) or
`conv:C1-C2[-C3]` (Larsen et al.'s small CNN, model=conv2 with those channels per stage: a 3x3 conv,
ReLU and 2x2 average pool each, then one dense layer). The default: 6 fully connected models on
scikit-learn's 8x8 digits (real digits, offline), widths 25-200 at depth 2 and depths 1 and 3 at width
100 (D from 2,535 to 55,210), 4 methods, 3 seeds; the conv family, full MNIST and every method are
in `preset=li2018`, meant for a GPU.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from benchmark.core.errors import UserError
from benchmark.studies.axis import Point, Row, log_slope, methods_of, model_spec

# Widths 25-200 at depth 2, depths 1-3 at width 100: D from 2,535 to 55,210 (x22) within ~20 min on 2 cores.
DEFAULT_MODELS = ["fc:25x2", "fc:50x2", "fc:100x2", "fc:200x2", "fc:100x1", "fc:100x3"]
DEFAULT_METHODS = ["full", "random_affine", "lottery_subspace", "random_pruning", "lottery_ticket"]
# IMP halves the kept weights per round (as the default preset) so that D/d = 1024 costs 10 rounds.
STUDY_OVERRIDES = ["imp.fraction=0.5"]
FRACTION = 0.9
# Li et al.'s grid (Fig. S7: widths 50-400, depths 1-5) on MNIST and a conv family of channel widths,
# every method of `run`'s default list, 10 epochs as their LeNet preset: about 30 runs, for a GPU.
PRESETS = {
    "li2018": {"dataset": "mnist", "epochs": 10, "ratios": [8, 32, 128, 512, 2048],
               "models": [f"fc:{w}x{d}" for w in (50, 100, 200, 400) for d in (1, 2, 3, 4, 5)]
               + [f"conv:{c}-{2 * c}" for c in (4, 8, 16, 32, 64)],
               "methods": ["full", "random_pruning", "lottery_ticket", "random_affine", "burn_in_affine",
                           "lottery_subspace", "random_pruning_t", "lottery_ticket_t", "lottery_subspace_t"]},
}


def points(models: list[str]) -> list[Point]:
    """One Point per model spec (axis.model_spec); a bad spec is one line naming it and what is accepted."""
    out = [Point(label, i, overrides) for i, (label, overrides) in enumerate(map(model_spec, models))]
    if len({p.label for p in out}) < len(out):
        raise UserError(f"a model is listed twice in {models}")
    return out


@dataclass(frozen=True)
class Spread:
    """One method across the models: is d*90 flat in D?"""

    method: str
    models: int
    measured: int  # models whose d*90 is a crossing (not 'not reached', not '≤ smallest d', not the anchor's)
    d_min: float | None
    d_max: float | None
    spread: float | None  # d_max / d_min over the measured models
    certain: float | None  # max(low) / min(high): the spread the intervals leave no doubt about (>= 1: real)
    D_spread: float  # max D / min D over the same models
    slope: float  # b in log d*90 = a + b log D (0: invariant; 1: d*90 grows as D, i.e. constant D/d*90)
    slope_se: float
    verdict: str


def spreads(rows: list[Row]) -> list[Spread]:
    out = []
    for m in methods_of(rows):
        mine = [r for r in rows if r.method == m and r.fraction == FRACTION]
        ok = [r for r in mine if r.d is not None and not r.upper_bound and not r.at_theta0]
        Ds = [r.D for r in (ok if len(ok) >= 2 else mine)]
        D_spread = max(Ds) / min(Ds)
        if len(ok) < 2:
            out.append(Spread(m, len(mine), len(ok), None, None, None, None, D_spread, math.nan, math.nan,
                              _not_measured(mine)))
            continue
        ds = [r.d for r in ok]
        lows = [r.low for r in ok if r.low is not None]
        highs = [r.high for r in ok if r.high is not None]
        certain = max(lows) / min(highs) if len(lows) == len(ok) and len(highs) == len(ok) else None
        slope, se = log_slope([r.D for r in ok], ds)
        out.append(Spread(m, len(mine), len(ok), min(ds), max(ds), max(ds) / min(ds), certain, D_spread, slope, se,
                          _verdict(slope, max(ds) / min(ds), D_spread, len(ok) < len(mine))))
    return out


def _not_measured(mine: list[Row]) -> str:
    if all(r.upper_bound for r in mine):
        return f"below this grid's resolution: d*90 ≤ {max(r.d for r in mine):,.0f} at every size"
    if all(r.d is None for r in mine):
        return "not at this scale: 90% is not reached at any tested d"
    return "not at this scale: fewer than 2 models with a measured crossing"


def _verdict(slope: float, spread: float, D_spread: float, partial: bool) -> str:
    some = " (on the models where it is measured)" if partial else ""
    if slope <= 0.25:
        return f"yes{some}: d*90 within x{spread:.1f} while D grows x{D_spread:.0f} (slope {slope:+.2f})"
    if slope >= 0.6:
        return f"no{some}: d*90 grows with D (slope {slope:+.2f}; x{spread:.1f} over x{D_spread:.0f} in D)"
    return f"partly{some}: d*90 grows slower than D (slope {slope:+.2f}; x{spread:.1f} over x{D_spread:.0f} in D)"
