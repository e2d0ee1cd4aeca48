"""One capped extension wave: extra d for methods whose threshold the configured ratios do not bracket.

A threshold is bracketed when some tested d misses the target and a larger one reaches it. Otherwise
the wave adds geometrically spaced d for that method alone, with the same candidate learning rates as
every cell: below the smallest d tested (down to d = 1, or to the method's smallest d on this model:
SAID needs one more than its layers) when even that reaches the target, above the largest (towards D,
never D itself) when none does. One wave, at most `max_dims` new d per method; a
threshold still unbracketed after it is reported as an open bound.
"""
from __future__ import annotations

import math

from benchmark.config.build import dim_for_ratio
from benchmark.methods import min_dim
from benchmark.runner.grid import Cell, lr_candidates
from leaderboards.selection import selected_only
from leaderboards.table import summarize


def extra_dims(ds: list[int], reached: list[bool], D: int, max_dims: int, min_d: int = 1) -> list[int]:
    """New d for one method: ds ascending (tested d), reached[i] whether the seed-mean accuracy at ds[i]
    reaches the target. [] when bracketed, when nothing was tested, or when the edge is already
    d = min_d / D - 1.

    Down: max_dims points geometric between ds[0] and min_d (the method's smallest d), the last d = min_d.
    Up: max_dims points geometric strictly between ds[-1] and D."""
    if not ds or max_dims < 1:
        return []
    if reached[0]:
        lo = ds[0]
        points = [min_d * (lo / min_d) ** (1 - k / max_dims) for k in range(1, max_dims + 1)]  # ends at min_d
    elif not any(reached):
        hi = ds[-1]
        points = [hi * (D / hi) ** (k / (max_dims + 1)) for k in range(1, max_dims + 1)]
    else:
        return []
    tested = set(ds)
    out = sorted({d for d in (int(round(p)) for p in points) if min_d <= d < D and d not in tested})
    return out


def extension_ratios(curves: dict[str, tuple[list[int], list[float]]], target: float, D: int,
                     max_dims: int, min_dims: dict[str, int] | None = None) -> dict[str, list[float]]:
    """method -> the compression ratios D/d of its extra d. curves: method -> (ds ascending, seed-mean
    accuracy per d; NaN where every seed failed, which neither reaches nor misses); min_dims: method ->
    its smallest d on this model (default 1)."""
    out = {}
    for method, (ds, accs) in curves.items():
        points = [(d, a) for d, a in zip(ds, accs) if math.isfinite(a)]
        if not points:
            continue
        dims = extra_dims([d for d, _ in points], [a >= target for _, a in points], D, max_dims,
                          (min_dims or {}).get(method, 1))
        if dims:
            out[method] = [D / d for d in dims]
    return out


def plan_extension(cfg, records: list[dict], D: int, fraction: float = 0.9, model=None,
                   floor_loss: float | None = None) -> list:
    """The extension wave's cells (grid.Cell, every seed and candidate lr of cfg) from the records of
    the planned grid: each cell's lr selected on validation first, as the leaderboard reads them.
    model: the FlatModel, for each method's smallest d and lr scale on it (methods.min_dim, lr_scale).

    Decided on the validation split alone (target: `fraction` of the reference's seed-mean val_acc), so
    the test split is still read once, for the report. With floor_loss (nats; language modelling: the
    unigram model's validation loss) the target is on the loss saved over that floor instead:
    floor − loss >= fraction (floor − reference loss), as the bits leaderboard reads it.
    [] when the wave is off or there is no FINISHED reference."""
    if not cfg.extension.enabled or not records:
        return []
    chosen = selected_only(records)
    summary = summarize(chosen, "val_acc" if floor_loss is None else "val_loss")
    value = (lambda v: v) if floor_loss is None else (lambda v: floor_loss - v)  # larger is better
    full = summary.get(("full", 1.0))
    if full is None or not math.isfinite(full["mean"]):
        return []
    curves = {}
    for method in cfg.methods:
        if method == "full":
            continue
        cells = sorted(((v["d"], value(v["mean"])) for (m, _), v in summary.items() if m == method))
        if cells:
            curves[method] = ([d for d, _ in cells], [a for _, a in cells])
    min_dims = {m: min_dim(m, model) for m in curves} if model is not None else None
    ratios = extension_ratios(curves, fraction * value(full["mean"]), D, cfg.extension.max_dims, min_dims)
    return extension_cells(cfg, D, [(m, r) for m, rs in ratios.items() for r in rs], model)


def extension_cells(cfg, D: int, pairs: list[tuple[str, float]], model=None) -> list:
    """grid.Cell for every seed and candidate lr (on `model`) of each (method, ratio): a wave as
    `reproduce` replays it."""
    return [Cell(m, float(r), dim_for_ratio(D, r), seed, lr) for seed in cfg.seeds for m, r in pairs
            for lr in lr_candidates(cfg, m, model)]
