"""Preparation reused across invocations: one file per (seed, content hash), validated when read.

Files hold only tensors and numbers (torch.save of a flat dict; read with weights_only=True, so
loading never unpickles arbitrary objects). A file that is missing, truncated, corrupt or of the
wrong shape is recomputed, never trusted. Writes are atomic (write, then rename); one that
fails (full disk, read-only folder) only warns.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from benchmark.data import default_cache_dir, write_cache
from benchmark.prep import Preparation


def prep_key(content: dict, seed: int) -> str:
    blob = json.dumps([content, seed], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _path(key: str) -> Path:
    return default_cache_dir() / "prep" / f"{key}.pt"


def _flatten(p: Preparation) -> dict:
    out = {"seed": torch.tensor(p.seed), "w0": p.w0.cpu(), "burn_in_steps": torch.tensor(p.burn_in_steps),
           "full_steps": torch.tensor(p.full_steps), "rank": torch.tensor(p.rank),
           "basis_dim": torch.tensor(p.basis_dim), "indep_rank": torch.tensor(p.indep_rank)}
    if p.wt is not None:
        out["wt"] = p.wt.cpu()
    if p.basis is not None:
        out["basis"] = p.basis.cpu()
    if p.indep_basis is not None:
        out["indep_basis"] = p.indep_basis.cpu()
    for anchor, masks in p.tickets.items():
        for d, idx in masks.items():
            out[f"ticket.{anchor}.{d}"] = idx.cpu()
    for d, r in p.ticket_rounds.items():
        out[f"rounds.{d}"] = torch.tensor(r)
    return out


def _unflatten(t: dict, D: int, device) -> Preparation:
    w0 = t["w0"]
    if w0.shape != (D,):
        raise ValueError(f"w0 has shape {tuple(w0.shape)}, expected ({D},)")
    p = Preparation(seed=int(t["seed"]), w0=w0.to(device), burn_in_steps=int(t["burn_in_steps"]),
                    full_steps=int(t["full_steps"]), rank=int(t["rank"]), basis_dim=int(t["basis_dim"]),
                    indep_rank=int(t.get("indep_rank", 0)))
    if "wt" in t:
        p.wt = t["wt"].to(device)
    if "basis" in t:
        p.basis = t["basis"].to(device)
    if "indep_basis" in t:
        p.indep_basis = t["indep_basis"].to(device)
    for k, v in t.items():
        if k.startswith("ticket."):
            _, anchor, d = k.split(".")
            if v.numel() != int(d) or int(v.max()) >= D:
                raise ValueError(f"ticket {k} is malformed")
            p.tickets.setdefault(anchor, {})[int(d)] = v.to(device)
        elif k.startswith("rounds."):
            p.ticket_rounds[int(k.split(".")[1])] = int(v)
    for name, x in (("wt", p.wt), ("basis", p.basis), ("indep_basis", p.indep_basis)):
        if x is not None and not bool(torch.isfinite(x).all()):
            raise ValueError(f"{name} holds non-finite values")
    return p


def load(key: str, D: int, device) -> Preparation | None:
    """The cached preparation, or None when absent or not valid (it is then recomputed)."""
    path = _path(key)
    if not path.exists():
        return None
    try:
        return _unflatten(torch.load(path, map_location="cpu", weights_only=True), D, device)
    except Exception:  # truncated, corrupt, foreign, or from an incompatible version: recompute
        return None


def store(key: str, p: Preparation) -> bool:
    """Atomically; a full disk or read-only cache folder warns and returns False (never fails the run)."""
    flat = _flatten(p)
    return write_cache(_path(key), lambda tmp: torch.save(flat, tmp))
