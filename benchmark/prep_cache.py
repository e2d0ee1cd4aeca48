"""Preparation reused across invocations: one file per (seed, content hash), validated when read.

Files hold every cached field of Preparation, by name, as tensors, numbers and dicts of them
(torch.save; read with weights_only=True, so loading never unpickles arbitrary objects). No field
is written by hand: a file whose fields differ from today's Preparation is another version. A file
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

from benchmark.data import default_cache_dir, write_cache
from benchmark.prep import Preparation
from subspaces.flat import FlatModel


def prep_key(content: dict, seed: int) -> str:
    blob = json.dumps([content, seed], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _path(key: str) -> Path:
    return default_cache_dir() / "prep" / f"{key}.pt"


# Preparation fields that are not data of this seed: the model it is for is supplied by the reader.
_NOT_CACHED = {"model"}


def _fields() -> list[str]:
    return [f.name for f in dataclasses.fields(Preparation) if f.init and f.name not in _NOT_CACHED]


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


def _unflatten(t: dict, flat: FlatModel, device) -> Preparation:
    """A Preparation from a cache file's dict, every field present and valid, or ValueError."""
    if set(t) != set(_fields()):
        raise ValueError(f"fields {sorted(t)} differ from Preparation's {sorted(_fields())}")  # another version
    D = flat.D
    if tuple(t["w0"].shape) != (D,):
        raise ValueError(f"w0 has shape {tuple(t['w0'].shape)}, expected ({D},)")
    for path, x in _tensors(t):
        if x.is_floating_point() and not bool(torch.isfinite(x).all()):
            raise ValueError(f"{path} holds non-finite values")
    for key, masks in t["masks"].items():
        for d, idx in masks.items():
            if idx.numel() != d or (d and (int(idx.max()) >= D or int(idx.min()) < 0)):
                raise ValueError(f"mask {key} at d = {d} is malformed")
    return Preparation(**_walk(t, lambda x: x.to(device)), model=flat)


def load(key: str, flat: FlatModel, device) -> Preparation | None:
    """The cached preparation for this model, or None when absent or not valid (it is then recomputed)."""
    path = _path(key)
    if not path.exists():
        return None
    try:
        return _unflatten(torch.load(path, map_location="cpu", weights_only=True), flat, device)
    except Exception:  # truncated, corrupt, foreign, or from an incompatible version: recompute
        return None


def store(key: str, p: Preparation) -> bool:
    """Atomically; a full disk or read-only cache folder warns and returns False (never fails the run)."""
    data = {name: _walk(getattr(p, name), lambda x: x.detach().cpu()) for name in _fields()}
    return write_cache(_path(key), lambda tmp: torch.save(data, tmp))
