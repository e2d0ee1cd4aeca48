"""Preparation reused across invocations: one file per (seed, content hash), validated when read.

Files hold every cached field of Preparation, by name, as tensors, numbers and dicts of them
(torch.save; read with weights_only=True, so loading never unpickles arbitrary objects): the base
(w0, w_t, the full run's weights, trajectory bases) in one file, each directions kind's masks in a
part file keyed by the base and that kind's own plan. No field is written by hand: a file whose
fields differ from today's Preparation is another version. A file
that is missing, truncated, corrupt, of another version or of the wrong shape is recomputed, never
trusted. Writes are atomic (write, then rename); one that
fails (full disk, read-only folder) only warns.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import torch

from benchmark.config.build import RunConfig
from benchmark.data.splits import default_cache_dir, write_cache
from benchmark.methods import own_preparation
from benchmark.training.prep import BASE_NEEDS, Preparation, init_weights, prepare_base, prepare_masks
from subspaces.flat import FlatModel


def prep_key(content: dict, seed: int) -> str:
    blob = json.dumps([content, seed], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _path(key: str) -> Path:
    return default_cache_dir() / "prep" / f"{key}.pt"


# Preparation fields that are not the base: each kind's masks and rounds go to a part file of their own,
# so that a kind asked for later (another method, an extension wave's IMP targets) reuses the base.
_PARTS = {"masks", "rounds"}
_NOT_CACHED = {"model"}  # the model it is for is supplied by the reader


def _fields() -> list[str]:
    return [f.name for f in dataclasses.fields(Preparation) if f.init and f.name not in _NOT_CACHED | _PARTS]


def _walk(value, fn):
    """value with fn applied to every tensor in it (nested dicts of tensors and numbers)."""
    if isinstance(value, dict):
        return {k: _walk(v, fn) for k, v in value.items()}
    return fn(value) if isinstance(value, torch.Tensor) else value


def _tensors(value, path: str = ""):
    """(path, tensor) for every tensor in a nested dict."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _tensors(v, f"{path}.{k}")
    elif isinstance(value, torch.Tensor):
        yield path, value


def _finite(t: dict) -> None:
    for path, x in _tensors(t):
        if x.is_floating_point() and not bool(torch.isfinite(x).all()):
            raise ValueError(f"{path} holds non-finite values")


def _read(key: str):
    path = _path(key)
    return torch.load(path, map_location="cpu", weights_only=True) if path.exists() else None


def _write(key: str, data: dict) -> bool:
    data = _walk(data, lambda x: x.detach().cpu())
    return write_cache(_path(key), lambda tmp: torch.save(data, tmp))


def load(key: str, flat: FlatModel, device) -> Preparation | None:
    """The cached base of a preparation for this model (masks and rounds empty), or None when absent or
    not valid: another version's fields, the wrong D, non-finite values (it is then recomputed)."""
    try:
        t = _read(key)
        if t is None:
            return None
        if set(t) != set(_fields()):
            raise ValueError(f"fields {sorted(t)} differ from Preparation's {sorted(_fields())}")
        if tuple(t["w0"].shape) != (flat.D,):
            raise ValueError(f"w0 has shape {tuple(t['w0'].shape)}, expected ({flat.D},)")
        _finite(t)
        return Preparation(**_walk(t, lambda x: x.to(device)), model=flat)
    except Exception:  # truncated, corrupt, foreign, or from an incompatible version: recompute
        return None


def store(key: str, p: Preparation) -> bool:
    """The base, atomically; a full disk or read-only cache folder warns and returns False (never fails the run)."""
    return _write(key, {name: getattr(p, name) for name in _fields()})


def store_part(key: str, kind: str, p: Preparation) -> bool:
    """One kind's masks ("<kind>.<anchor>" entries) and rounds."""
    return _write(key, {"masks": {k: v for k, v in p.masks.items() if k.split(".")[0] == kind},
                        "rounds": {k: v for k, v in p.rounds.items() if k == kind}})


def load_part(key: str, kind: str, D: int, device) -> dict | None:
    """{"masks": ..., "rounds": ...} of one kind, every mask exactly d distinct coordinates below D; or None."""
    try:
        t = _read(key)
        if t is None:
            return None
        if set(t) != {"masks", "rounds"} or any(k.split(".")[0] != kind for k in t["masks"]):
            raise ValueError("not a part of this kind")
        for name, masks in t["masks"].items():
            for d, idx in masks.items():
                if idx.numel() != d or idx.unique().numel() != d or (d and not 0 <= int(idx.min()) <= int(idx.max()) < D):
                    raise ValueError(f"mask {name} at d = {d} is malformed")
        return _walk(t, lambda x: x.to(device))
    except Exception:
        return None


def shared_preparation(cfg: RunConfig, prep_plan: dict, seeds, flat: FlatModel, make_module, data, device, say,
                       batches: list[list[int]] | None = None,
                       timings: dict[str, float] | None = None) -> tuple[dict, list[list[int]]]:
    """Preparation for `seeds`: from the content-addressed cache where it exists, else computed (all
    missing seeds as one population, seed by seed with population=false, or as `batches` say) and cached.
    The base (full run, trajectories) and each kind's masks are cached apart: a seed whose base is
    cached computes only the masks it lacks (e.g. the IMP targets an extension wave adds).

    prep_plan (`grid.preparation_plan`) is the invocation's whole plan with the reference's selected
    recipe, so a resumed sweep prepares exactly what the uninterrupted one would have. Returns (preps,
    the batches of seeds computed together); batching changes float rounding, so `reproduce` replays it."""
    # The base depends on the plan but for the kinds' own masks (they are in `needs` too).
    base_plan = {**{k: v for k, v in prep_plan.items() if k != "masks"}, "device": device.type,
                 "needs": sorted(set(prep_plan["needs"]) & BASE_NEEDS)}
    every = sorted(set(seeds).union(*(batches or [])))
    base_key = {s: prep_key(base_plan, s) for s in every}
    part_key = {(s, kind): prep_key({**base_plan, "kind": kind, "part": part}, s)
                for s in every for kind, part in prep_plan["masks"].items()}
    preps, lacking = _cached(seeds, base_key, part_key, list(prep_plan["masks"]), flat, device)
    if preps:
        say(f"  prep: reusing cached preparation for seed(s) {sorted(preps)}")
    todo = [s for s in seeds if s not in preps or lacking[s]]
    if not todo:
        return preps, []
    prunable, layers = _prunable(cfg, flat, device)
    if batches is None:
        batches = [todo] if cfg.population else [[s] for s in todo]
    train_cfg = dataclasses.replace(cfg.train, lr=prep_plan["train"]["lr"])  # the reference's selected lr
    progress = lambda m: say(f"  prep: {m}")
    done = []
    for batch in batches:
        if not set(batch) & set(todo):
            continue
        if any(s not in preps for s in batch):
            w0 = torch.stack([init_weights(make_module, s) for s in batch]).to(device)
            fresh = prepare_base(batch, w0, flat, data, train_cfg, set(prep_plan["needs"]), cfg.burn_in_steps,
                                 cfg.trajectory.every, cfg.trajectory.centered, cfg.trajectory.complete,
                                 prep_plan["basis"], progress, timings)
            for s, p in fresh.items():
                store(base_key[s], p)
            kinds = list(prep_plan["masks"])
        else:
            fresh = {s: preps[s] for s in batch}
            kinds = sorted({k for s in batch for k in lacking[s]})
            say(f"  prep: reusing the cached full run for seed(s) {batch}; preparing {', '.join(kinds)}")
        own = own_preparation({k: prep_plan["masks"][k] for k in kinds})
        prepare_masks(fresh, flat, data, train_cfg, own, cfg.imp.fraction, prunable, layers, progress, timings)
        for s, p in fresh.items():
            for kind in kinds:
                store_part(part_key[(s, kind)], kind, p)
        preps.update(fresh)
        done.append(list(batch))
    return preps, done


def _cached(seeds, base_key: dict, part_key: dict, kinds: list[str], flat: FlatModel,
            device) -> tuple[dict[int, Preparation], dict[int, list[str]]]:
    """The cached preparations of `seeds` whose base is cached, with every kind's masks that are cached too;
    and, per such seed, the kinds whose masks are not."""
    preps: dict[int, Preparation] = {}
    lacking: dict[int, list[str]] = {}
    for s in seeds:
        p = load(base_key[s], flat, device)
        if p is None:
            continue
        preps[s], lacking[s] = p, []
        for kind in kinds:
            part = load_part(part_key[(s, kind)], kind, flat.D, device)
            if part is None:
                lacking[s].append(kind)
            else:
                p.masks.update(part["masks"])
                p.rounds.update(part["rounds"])
    return preps, lacking


def _prunable(cfg: RunConfig, flat: FlatModel, device) -> tuple[torch.Tensor | None, list | None]:
    """What masks may prune, (D,) bool or None for every coordinate (imp.prunable=weights: biases, the 1-d
    tensors, never), and the layers a layer-wise ranking works in (imp.scope=layer; None: global)."""
    layers = list(flat.slices) if cfg.imp.scope == "layer" else None
    prunable = None
    if cfg.imp.prunable == "weights":
        prunable = torch.ones(flat.D, dtype=torch.bool, device=device)
        for sl, shape in zip(flat.slices, flat.shapes):
            prunable[sl] = len(shape) > 1
    return prunable, layers
