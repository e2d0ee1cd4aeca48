"""Choosing each cell's learning rate on the validation split, the same way for every method.

A cell is a (method, ratio); its candidates are its learning rates, each trained on every seed. The
selected candidate has the highest seed-mean *final-epoch* validation accuracy among candidates whose
every seed FINISHED (a diverged seed makes its candidate failed: it cannot be selected); a cell with a
single candidate keeps it, its failed seeds counted as failed. Ties (equal
accuracy, as 400 validation examples allow) go to the lower seed-mean final validation loss, then to
the smaller learning rate. Records with select_on = "val_loss" (language modelling, judged in bits:
`benchmark.data.registry.selection_metric`) rank on the lowest validation loss first, accuracy breaking ties.
Nothing here reads a test metric.
"""
from __future__ import annotations

import math
from collections import defaultdict


def _lr(record: dict) -> float | None:
    """A record's learning rate; None for members logged before candidates existed (one per cell)."""
    v = record.get("lr")
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _key(record: dict) -> tuple[str, float]:
    return record["method"], float(record["ratio"])


FAILED = "failed"  # the value of a cell whose every candidate failed


def select(records: list[dict]) -> dict[tuple[str, float], float | None | str]:
    """(method, ratio) -> the selected lr (None for records without one), or FAILED when every
    candidate failed."""
    candidates: dict[tuple[str, float], dict[float | None, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        candidates[_key(r)][_lr(r)].append(r)
    out: dict[tuple[str, float], float | None | str] = {}
    for cell, by_lr in candidates.items():
        if len(by_lr) == 1:  # nothing to choose (lr_grid=[1], or runs logged before candidates existed):
            out[cell] = next(iter(by_lr))  # its failed seeds count as failed, as without selection
            continue
        on_loss = any(r.get("select_on") == "val_loss" for rs in by_lr.values() for r in rs)
        scored = []
        for lr, rs in by_lr.items():
            acc = [float(r.get("val_acc", math.nan)) for r in rs]
            loss = [float(r.get("val_loss", math.nan)) for r in rs]
            if all(r["status"] == "FINISHED" for r in rs) and all(map(math.isfinite, loss if on_loss else acc)):
                mean_loss = sum(loss) / len(loss) if all(map(math.isfinite, loss)) else math.inf
                mean_acc = sum(acc) / len(acc)
                key = (mean_loss, -mean_acc) if on_loss else (-mean_acc, mean_loss)
                scored.append((*key, -math.inf if lr is None else lr, lr))
        out[cell] = min(scored)[-1] if scored else FAILED
    return out


def mark(records: list[dict]) -> list[dict]:
    """Each record as a copy with "selected": True|False; the records of a cell whose every candidate
    failed all count as FAILED."""
    chosen = select(records)
    out = []
    for r in records:
        lr = chosen[_key(r)]
        out.append(dict(r, status="FAILED", selected=False) if lr == FAILED else dict(r, selected=_lr(r) == lr))
    return out


def selected_only(records: list[dict]) -> list[dict]:
    """What tables, thresholds and plots read: every cell's selected candidate, one record per seed;
    a cell whose every candidate failed keeps its (FAILED) records so that it shows as FAILED."""
    chosen = select(records)
    return [r for r in mark(records) if r["selected"] or chosen[_key(r)] == FAILED]
