"""`python -m benchmark reproduce RUN_ID [--rtol X]`: re-run one member from what its runs logged.

A member's numbers depend, at the level of float rounding, on what it was computed with: the seeds
whose preparation was batched together and the members that trained in its population. Both are in
the parent run's provenance.json, so the member is re-run exactly as it ran: its parent's config,
its preparation (from the content-addressed cache, else recomputed in the original batch), and its
whole population. Then old and new metrics are printed side by side; exit 0 when they agree
(exactly by default: the same config on the same platform and device gives the same bits).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

from mlflow.exceptions import MlflowException
from tqdm import tqdm

from benchmark.config.build import RunConfig
from benchmark.core.errors import UserError
from benchmark.core.overrides import parse, shared
from benchmark.methods import METHODS
from benchmark.runner import tracking
from benchmark.runner.context import setup
from benchmark.runner.extension import extension_cells
from benchmark.runner.grid import member_hash, plan, preparation_plan, train_cells
from benchmark.runner.prep_cache import shared_preparation
from benchmark.runner.tracking import PROVENANCE
from benchmark.training.prep import Preparation, init_weights

COMPARED = ("test_acc", "test_loss", "val_acc", "val_loss", "train_acc", "train_loss", "steps", "prep_steps")


def _load(client, run_id: str):
    """(child run, parent config dict, provenance dict) or UserError."""
    try:
        child = client.get_run(run_id)
    except MlflowException:
        raise UserError(f"no run {run_id!r} in this tracking store; accepted: the id of a member (child) run, "
                        f"e.g. from the MLflow UI or `mlflow runs list`") from None
    parent_id = child.data.tags.get("mlflow.parentRunId")
    if "config_hash" not in child.data.params or not parent_id:
        raise UserError(f"run {run_id!r} is not a dofbench member run (no config_hash or parent); accepted: the "
                        f"id of a child run of `python -m benchmark run`")
    if child.info.status not in ("FINISHED", "FAILED"):
        raise UserError(f"run {run_id!r} is {child.info.status}: it never finished, so there is nothing to "
                        f"reproduce; accepted: a FINISHED or FAILED member")
    if "dofbench.population" not in child.data.tags:
        raise UserError(f"run {run_id!r} has no dofbench.population tag: it was logged by an older dofbench, "
                        f"so its population cannot be replayed")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    texts = {}
    for name in ("config.json", PROVENANCE):
        try:
            with open(client.download_artifacts(parent_id, name)) as f:
                texts[name] = json.load(f)
        except (MlflowException, OSError, ValueError):
            raise UserError(f"parent run {parent_id} of {run_id!r} has no readable {name}; it was logged by an "
                            f"older dofbench or deleted, so this member cannot be replayed") from None
    return child, texts["config.json"], texts[PROVENANCE]


def reproduce(run_id: str, rtol: float = 0.0, tracking_uri: str | None = None, out=None) -> bool:
    """Re-run member `run_id`; print logged vs reproduced metrics; True when all agree within rtol."""
    out = out or sys.stdout  # the stream of the call, not the one at import (a test may have swapped it)
    say = lambda msg: print(msg, file=out, flush=True)
    client = tracking.connect(tracking.resolve_uri(tracking_uri))  # a bad URI fails clearly; nothing is written
    child, config, provenance = _load(client, run_id)
    cfg = RunConfig.from_dict(config)
    p = child.data.params
    device, data, make_module, flat = setup(cfg)
    planned = plan(cfg, flat.D, flat)
    extra = extension_cells(cfg, flat.D, [tuple(x) for x in provenance.get("extension", [])], flat)
    target = next((c for c in planned + extra if c.name == child.info.run_name), None)
    if target is None:
        raise UserError(f"member {child.info.run_name!r} is not in its parent's plan; the config.json does not match")
    # The preparation followed the reference's lr as selected on validation in the original run, and
    # covered the extension wave's d for the wave's members.
    reference_lr = p.get("reference_lr")
    prep_plan = preparation_plan(cfg, planned if target in planned else planned + extra, flat.D,
                                 None if reference_lr is None else float(reference_lr))
    planned = planned + extra
    if member_hash(cfg, target, prep_plan) != p["config_hash"]:
        raise UserError(f"config_hash {member_hash(cfg, target, prep_plan)} of the replayed config "
                        f"differs from the logged {p['config_hash']}: the code's config changed since this run")
    population = provenance["populations"][int(child.data.tags["dofbench.population"])]
    members = [c for c in planned if c.name in population]
    batches = [b for b in provenance["prep_batches"] if target.seed in b]
    seeds = sorted({c.seed for c in members})
    say(f"replaying {target.name} (run {run_id}) with the {len(members)} member(s) it trained with; "
        f"device {device}")
    if any(METHODS[c.method].needs for c in members):
        preps, computed = shared_preparation(cfg, prep_plan, seeds, flat, make_module, data, device,
                                             say, batches=batches or None)
    else:  # the reference stage, or methods that use w0 alone
        preps, computed = {s: Preparation(s, init_weights(make_module, s).to(device), model=flat) for s in seeds}, []
    with tqdm(total=len(members) * cfg.train.epochs, desc="replaying", unit="member-epoch", file=sys.stderr,
              dynamic_ncols=True) as bar:
        outcomes = train_cells(cfg, members, preps, flat, data, on_done=lambda done: None,
                               on_epoch=lambda e, K: bar.update(K), memory_budget=2**62)
    new = next(o for o in outcomes if o.cell == target)
    old = child.data.metrics
    rows, agree = [], new.status == child.info.status
    for key in COMPARED:
        if key not in old and key not in new.metrics:
            continue
        a, b = old.get(key, math.nan), new.metrics.get(key, math.nan)
        ok = (a == b) or (math.isfinite(a) and math.isfinite(b) and abs(a - b) <= rtol * abs(a))
        agree &= ok
        rows.append((key, a, b, abs(a - b), "ok" if ok else "DIFFERS"))
    say(f"\n{'metric':<12} {'logged':>22} {'reproduced':>22} {'|diff|':>10}")
    for key, a, b, diff, verdict in rows:
        say(f"{key:<12} {a!r:>22} {b!r:>22} {diff:>10.3g}  {verdict}")
    say(f"{'status':<12} {child.info.status:>22} {new.status:>22}")
    say(f"\n{'reproduced' if agree else 'NOT reproduced'} "
        f"({'exactly' if rtol == 0 else f'rtol {rtol:g}'}; preparation {'recomputed' if computed else 'from the cache'})")
    return agree


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmark reproduce", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_id", help="a member (child) run id")
    ap.add_argument("--rtol", type=float, default=0.0, help="relative tolerance (default 0: bit-identical)")
    shared(ap)
    args = parse(ap, argv)
    if args.rtol < 0:
        print(f"error: --rtol {args.rtol}: must be >= 0", file=sys.stderr)
        return 2
    try:
        return 0 if reproduce(args.run_id, args.rtol, args.tracking_uri) else 1
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
