"""`python -m benchmark run`: config -> data + model -> shared preparation -> population training -> MLflow."""
from __future__ import annotations

import contextlib
import json
import sys
import time
from dataclasses import asdict

import torch

from benchmark.config import RunConfig, dim_for_ratio
from benchmark.data import load_dataset
from benchmark.errors import UserError
from benchmark.flat import FlatModel
from benchmark.grid import Cell, MemberOutcome, lr_for, plan, train_cells
from benchmark.methods import METHODS, prep_steps
from benchmark.models import create_from_config
from benchmark.prep import init_weights, prepare
from benchmark.train import steps_per_epoch
from benchmark import interrupts, prep_cache, tracking
from leaderboards import build, to_text
from leaderboards.source import REUSED, finished_members
from leaderboards.write import write


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device 'cuda' was asked for but no CUDA GPU is visible; accepted here: auto, cpu")
    return torch.device(name)


def request_determinism() -> None:
    """Deterministic CUDA kernels where they exist. What remains nondeterministic on GPU: scatter-add
    (the sparse projection's forward, and the gradient of a coordinate gather), whose float sums
    depend on thread order; torch warns once per such kernel rather than refusing it."""
    import os

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS reductions
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)


def member_params(cfg: RunConfig, c: Cell, D: int) -> dict:
    m = METHODS[c.method]
    lr = lr_for(cfg, c.method)
    return {
        "method": c.method, "family": m.family, "anchor": m.anchor,
        "dataset": cfg.dataset["name"], "model": cfg.model["name"],
        "D": D, "d": c.d, "ratio": c.ratio, "seed": c.seed,
        "burn_in_steps": cfg.burn_in_steps, "projection": cfg.projection if m.family == "general" else "n/a",
        "optimizer": cfg.train.optimizer, "lr": lr, "epochs": cfg.train.epochs,
        "batch_size": cfg.train.batch_size, "weight_decay": cfg.train.weight_decay,
        "config_hash": cfg.hash(c.method, c.ratio, c.seed),
    }


def publish_leaderboard(client, parent: str, records: list[dict], dataset: str, model: str,
                        folder: str = "leaderboard"):
    """Build the leaderboard of one parent run's members; log its files and dstar90.<method> metrics on it."""
    import tempfile
    from pathlib import Path

    lb = build(records, dataset, model)
    with tempfile.TemporaryDirectory() as tmp:
        write(lb, Path(tmp))
        client.log_artifacts(parent, tmp, folder)
    metrics = {f"dstar90.{row.method}": row.threshold.d for row in lb.rows
               if row.threshold is not None and row.threshold.d is not None}
    metrics.update({f"compression90.{row.method}": row.compression for row in lb.rows if row.compression})
    tracking.log_values(client, parent, metrics=metrics)
    return lb


def outcome_record(o: MemberOutcome, D: int, num_classes: int) -> dict:
    """One member as the leaderboard reads it (the same keys a logged child run gives)."""
    return dict(method=o.cell.method, ratio=o.cell.ratio, d=o.cell.d, D=D, seed=o.cell.seed, status=o.status,
                num_classes=num_classes, **o.metrics)


PROVENANCE = "provenance.json"  # on the parent run

# The largest lottery-subspace basis (D x d float32) the preparation will store per seed.
BASIS_BUDGET_BYTES = 2 * 2**30


def shared_preparation(cfg: RunConfig, cells, seeds, flat: FlatModel, make_module, data, device, say,
                       batches: list[list[int]] | None = None) -> tuple[dict, list[list[int]]]:
    """Preparation for `seeds`: from the content-addressed cache where it exists, else computed (all
    missing seeds as one population, seed by seed with population=false, or as `batches` say) and cached.

    What a preparation holds (ticket dims, basis size) follows `cells`, the invocation's whole plan, so a
    resumed sweep prepares exactly what the uninterrupted one would have. Returns (preps, the batches
    of seeds computed together); batching changes float rounding, so `reproduce` replays it."""
    D = flat.D
    needs = set().union(*(METHODS[m].needs for m in cfg.methods))
    ticket_dims = sorted({c.d for c in cells if METHODS[c.method].directions == "ticket"})
    anchors = tuple(a for a in ("w0", "wt") if any(
        METHODS[m].directions == "ticket" and METHODS[m].anchor == a for m in cfg.methods))
    # A lottery subspace is a stored D x d basis: d whose basis would not fit the budget fail clearly.
    wanted = [c.d for c in cells if METHODS[c.method].directions == "trajectory"]
    basis_dim = max([d for d in wanted if D * d * 4 <= BASIS_BUDGET_BYTES], default=0)
    if any(d > basis_dim for d in wanted):
        say(f"  prep: lottery subspaces with d > {basis_dim:,} are skipped: a D x d basis over "
            f"{BASIS_BUDGET_BYTES / 2**30:.0f} GiB")
    # Only what the preparation depends on: changing a subspace lr or the projection reuses it.
    content = {"dataset": cfg.dataset, "model": cfg.model, "train": asdict(cfg.train), "burn_in": cfg.burn_in_steps,
               "trajectory": asdict(cfg.trajectory), "imp": asdict(cfg.imp), "needs": sorted(needs),
               "tickets": ticket_dims, "basis": basis_dim, "anchors": anchors, "device": device.type}
    keys = {s: prep_cache.prep_key(content, s) for s in sorted(set(seeds).union(*(batches or [])))}
    preps = {s: p for s in seeds if (p := prep_cache.load(keys[s], D, device)) is not None}
    if preps:
        say(f"  prep: reusing cached preparation for seed(s) {sorted(preps)}")
    todo = [s for s in seeds if s not in preps]
    if not todo:
        return preps, []
    layers = list(flat.slices) if cfg.imp.scope == "layer" else None
    prunable = None
    if cfg.imp.prunable == "weights":  # biases (1-d tensors) are never pruned
        prunable = torch.ones(D, dtype=torch.bool, device=device)
        for sl, shape in zip(flat.slices, flat.shapes):
            prunable[sl] = len(shape) > 1
    if batches is None:
        batches = [todo] if cfg.population else [[s] for s in todo]
    done = []
    for batch in batches:
        if not set(batch) & set(todo):
            continue
        w0 = torch.stack([init_weights(make_module, s) for s in batch]).to(device)
        fresh = prepare(
            batch, w0, flat, data, cfg.train, needs, ticket_dims, cfg.burn_in_steps, cfg.trajectory.every,
            cfg.trajectory.centered, cfg.trajectory.complete, basis_dim, cfg.imp.fraction, prunable, layers,
            anchors or ("w0",), on_progress=lambda m: say(f"  prep: {m}"),
        )
        for s, p in fresh.items():
            prep_cache.store(keys[s], p)
        preps.update(fresh)
        done.append(list(batch))
    return preps, done


def stream_above_bytes(device: torch.device) -> int | None:
    """A dataset larger than a quarter of the GPU's free memory streams from host memory;
    the rest of the memory is for the population."""
    if device.type != "cuda":
        return None
    return torch.cuda.mem_get_info(device)[0] // 4


def setup(cfg: RunConfig):
    """(device, data on the device, make_module, flat model) for a config."""
    device = resolve_device(cfg.device)
    if device.type == "cuda":
        request_determinism()
    data = load_dataset(cfg.dataset).to(device, stream_above_bytes(device))
    make_module = lambda: create_from_config(cfg.model, data.input_shape, data.num_classes)
    return device, data, make_module, FlatModel.of(make_module().to(device))


def run(cfg: RunConfig, out=sys.stdout, sweep=None, job_name: str | None = None) -> dict:
    """Run the whole grid. Returns {"parent_run_id", "outcomes", "reused", "leaderboard", "uri"}.

    sweep: a benchmark.sweep.Sweep when this is one job of a Hydra multirun; its parent run is then
    the sweep's, in the sweep's store and experiment."""
    import dataclasses

    from tqdm import tqdm

    say = lambda msg: print(msg, file=out, flush=True)
    if sweep is not None:
        cfg = dataclasses.replace(cfg, tracking_uri=sweep.uri, experiment=sweep.experiment)
    device, data, make_module, flat = setup(cfg)
    D = flat.D
    planned = cells = plan(cfg, D)  # every bad value is caught before the store is touched
    full_steps = cfg.train.epochs * steps_per_epoch(len(data.y_train), cfg.train.batch_size)
    if cfg.burn_in_steps > full_steps and any(METHODS[m].anchor == "wt" for m in cfg.methods):
        raise UserError(f"burn_in_steps={cfg.burn_in_steps} exceeds the full-space run, which has {full_steps} "
                        f"steps ({cfg.train.epochs} epochs x {steps_per_epoch(len(data.y_train), cfg.train.batch_size)}"
                        f" steps); accepted: 0 <= burn_in_steps <= {full_steps}")
    uri = tracking.resolve_uri(cfg.tracking_uri)
    client, exp_id = tracking.open_store(uri, cfg.experiment_name)  # and a bad store before any training
    say(f"{data.describe()}\nmodel {cfg.model['name']}: D = {D:,} trainable scalars; device {device}")
    say("d per ratio: " + ", ".join(f"D/d={r:g} -> d={dim_for_ratio(D, r):,}" for r in cfg.ratios))
    # Content-addressed members: one FINISHED in this experiment with the same config_hash is reused.
    hashes = {c: cfg.hash(c.method, c.ratio, c.seed) for c in cells}
    finished = {} if cfg.force else finished_members(cfg.experiment_name, set(hashes.values()), uri)
    reused = [dict(finished[hashes[c]], num_classes=data.num_classes) for c in cells if hashes[c] in finished]
    if reused:
        say(f"{len(reused)} of {len(cells)} members already FINISHED in this experiment with the same config: "
            f"reused (force=true re-runs them)")
    cells = [c for c in cells if hashes[c] not in finished]

    status, parent = "FAILED", None
    provenance = {"populations": [], "prep_batches": []}
    running: dict = {}  # Cell -> child run id, created RUNNING when its population starts
    outcomes: list[MemberOutcome] = []  # trained in this invocation
    logged: set = set()  # ... and whose child run is closed in the store
    bar = None
    try:
        with interrupts.deferred():  # an interrupt here lands after `parent` is known, inside the try
            parent = tracking.start_run(client, exp_id, job_name or f"{cfg.preset}-{time.strftime('%Y%m%d-%H%M%S')}",
                                        parent_id=sweep.parent_run_id if sweep else None,
                                        tags={"dofbench.kind": "job" if sweep else "sweep"})
        tracking.log_values(client, parent, params={
            "dataset": cfg.dataset["name"], "model": cfg.model["name"], "D": D,
            "methods": ",".join(cfg.methods), "ratios": ",".join(f"{r:g}" for r in cfg.ratios),
            "seeds": ",".join(map(str, cfg.seeds)), "epochs": cfg.train.epochs, "preset": cfg.preset,
            "population": cfg.population, "device": str(device)},
            metrics={"D": D, "members": len(cells)})
        client.log_text(parent, json.dumps(cfg.to_dict(), indent=2, default=str), "config.json")
        if reused:  # they belong to this parent's leaderboard, though their runs sit under an earlier one
            client.log_text(parent, json.dumps([r["run_id"] for r in reused]), REUSED)

        t0 = time.perf_counter()
        preps, provenance["prep_batches"] = shared_preparation(
            cfg, planned, sorted({c.seed for c in cells}), flat, make_module, data, device, say)
        prep_time = time.perf_counter() - t0
        say(f"preparation done in {prep_time:.1f}s")
        tracking.log_values(client, parent, metrics={"prep_time_s": prep_time})

        member_epochs = len(cells) * cfg.train.epochs
        bar = tqdm(total=member_epochs, desc="training", unit="member-epoch", file=out, dynamic_ncols=True)

        def log_start(members: list) -> None:
            """Members exist in MLflow (RUNNING) while they train, so an interrupt can mark them KILLED."""
            index = len(provenance["populations"])
            provenance["populations"].append([c.name for c in members])
            for c in members:
                running[c] = tracking.start_run(client, exp_id, c.name, parent_id=parent,
                                                tags={"dofbench.population": str(index)})
                tracking.log_values(client, running[c], params=member_params(cfg, c, D))

        def log_done(done: list[MemberOutcome]) -> None:
            outcomes.extend(done)  # before logging: if the store fails, the numbers are still reported
            for o in done:
                if o.cell not in running:  # failed while its subspace was built: a population of its own
                    log_start([o.cell])
                child = running.pop(o.cell)
                metrics = dict(o.metrics, D=D, d=o.cell.d, ratio=o.cell.ratio)
                tags = {"failure_reason": o.reason} if o.reason else None
                curves = {"val_acc": o.curves.get("val_acc", []), "epoch_train_loss": o.curves.get("train_loss", [])}
                if o.status == "FAILED":
                    metrics.setdefault("prep_steps", float(prep_steps(o.cell.method, preps[o.cell.seed], o.cell.d)))
                    curves = {}
                tracking.log_values(client, child, None, metrics, curves, tags)
                tracking.end_run(client, child, o.status)
                logged.add(o.cell)

        train_cells(cfg, cells, preps, flat, data, on_done=log_done, on_epoch=lambda e, K: bar.update(K),
                    on_start=log_start)
        bar.close()
        wall = time.perf_counter() - t0
        records = reused + [outcome_record(o, D, data.num_classes) for o in outcomes]
        lb = publish_leaderboard(client, parent, records, cfg.dataset["name"], cfg.model["name"])
        tracking.log_values(client, parent, metrics={"wall_time_s": wall})
        say(f"\nleaderboard (test accuracy mean ± std over {len(cfg.seeds)} seed(s); ranked by D/d*90):\n{to_text(lb)}")
        for o in outcomes:
            if o.status == "FAILED":
                say(f"FAILED {o.cell.name}: {o.reason}")
        artifacts = client.get_run(parent).info.artifact_uri
        say(f"\n{len(outcomes)} members trained in {wall:.1f}s ({len(reused)} reused); parent run {parent} "
            f"in experiment {cfg.experiment_name!r}")
        say(f"plots and tables: {artifacts}/leaderboard/")
        say(f"to compare them: {tracking.ui_command(uri)}")
        status = "FINISHED"
        return {"parent_run_id": parent, "outcomes": outcomes, "reused": reused, "leaderboard": lb, "uri": uri}
    except tracking.StoreFailure as e:
        if bar is not None:
            bar.close()
        # Members logged FINISHED are reused by the next run; what was trained is shown here in any case.
        if outcomes:
            lb = build(reused + [outcome_record(o, D, data.num_classes) for o in outcomes],
                       cfg.dataset["name"], cfg.model["name"])
            say(f"\nthe tracking store failed; {len(outcomes) - len(logged)} member(s) trained in this run did "
                f"not reach it. Leaderboard of everything computed:\n{to_text(lb)}")
        kept = len(logged) + len(reused)
        raise tracking.StoreFailure(
            f"{e}. " + (f"The {kept} member(s) already in the store are kept and will be reused: " if kept else "")
            + "free space or restore write access (or choose another tracking.uri=), then re-run the same command"
            + (" to resume" if kept else "")) from None
    except KeyboardInterrupt:
        status = "KILLED"
        if parent is None:
            raise
        with interrupts.deferred():  # a second Ctrl-C waits for this bookkeeping (a third does not)
            # Members in flight, including one the interrupt caught between its creation and our bookkeeping.
            stray = client.search_runs([exp_id], f"tags.mlflow.parentRunId = '{parent}' and attributes.status = 'RUNNING'")
            for child in set(running.values()) | {r.info.run_id for r in stray}:
                tracking.end_run(client, child, "KILLED")
        raise
    finally:
        if parent is not None:
            with interrupts.deferred(), contextlib.suppress(tracking.StoreFailure):  # reported above
                # What `reproduce` replays: which members trained together, which seeds were prepared together.
                client.log_text(parent, json.dumps(provenance, indent=1), PROVENANCE)
                tracking.end_run(client, parent, status)
