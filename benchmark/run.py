"""`python -m benchmark run`: config -> data + model -> shared preparation -> population training -> MLflow."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
import time

import torch

from benchmark.config import RunConfig, dim_for_ratio
from benchmark.data import load_dataset
from benchmark.errors import UserError
from benchmark.extension import plan_extension
from subspaces.flat import FlatModel
from benchmark.grid import (BASIS_BUDGET_BYTES, Cell, MemberOutcome, member_hash, optimizer_of, plan, preparation_plan,
                            train_cells)
from benchmark.methods import DIRECTIONS, METHODS, own_preparation, prep_steps
from benchmark.models import create_from_config
from benchmark.prep import STAGES, Preparation, init_weights, prepare
from benchmark.train import steps_per_epoch
from benchmark import interrupts, prep_cache, tracking
from leaderboards import build, to_text
from leaderboards.selection import FAILED, mark, select
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


def member_params(cfg: RunConfig, c: Cell, D: int, prep_plan: dict | None) -> dict:
    m = METHODS[c.method]
    params = {
        "method": c.method, "family": m.family, "anchor": m.anchor,
        "dataset": cfg.dataset["name"], "model": cfg.model["name"],
        "D": D, "d": c.d, "ratio": c.ratio, "seed": c.seed,
        "burn_in_steps": cfg.burn_in_steps, "projection": cfg.projection if m.family == "general" else "n/a",
        "optimizer": optimizer_of(cfg, c.method), "lr": c.lr, "lr_grid": cfg.lr_grid_text,
        "epochs": cfg.train.epochs, "batch_size": cfg.train.batch_size, "weight_decay": cfg.train.weight_decay,
        "config_hash": member_hash(cfg, c, prep_plan),
    }
    if m.needs and prep_plan is not None:  # its preparation followed the reference's selected recipe
        params["reference_lr"] = prep_plan["train"]["lr"]
    return params


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


def outcome_record(o: MemberOutcome, D: int, num_classes: int, run_id: str | None = None) -> dict:
    """One member as the leaderboard reads it (the same keys a logged child run gives)."""
    m = METHODS[o.cell.method]
    return dict(method=o.cell.method, family=m.family, anchor=m.anchor, ratio=o.cell.ratio, d=o.cell.d, D=D,
                seed=o.cell.seed, lr=o.cell.lr, status=o.status, num_classes=num_classes, run_id=run_id, **o.metrics)


PROVENANCE = "provenance.json"  # on the parent run


def shared_preparation(cfg: RunConfig, prep_plan: dict, seeds, flat: FlatModel, make_module, data, device, say,
                       batches: list[list[int]] | None = None,
                       timings: dict[str, float] | None = None) -> tuple[dict, list[list[int]]]:
    """Preparation for `seeds`: from the content-addressed cache where it exists, else computed (all
    missing seeds as one population, seed by seed with population=false, or as `batches` say) and cached.

    prep_plan (`grid.preparation_plan`) is the invocation's whole plan with the reference's selected
    recipe, so a resumed sweep prepares exactly what the uninterrupted one would have. Returns (preps,
    the batches of seeds computed together); batching changes float rounding, so `reproduce` replays it."""
    D = flat.D
    keys = {s: prep_cache.prep_key({**prep_plan, "device": device.type}, s)
            for s in sorted(set(seeds).union(*(batches or [])))}
    preps = {s: p for s in seeds if (p := prep_cache.load(keys[s], flat, device)) is not None}
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
    train_cfg = dataclasses.replace(cfg.train, lr=prep_plan["train"]["lr"])  # the reference's selected lr
    done = []
    for batch in batches:
        if not set(batch) & set(todo):
            continue
        w0 = torch.stack([init_weights(make_module, s) for s in batch]).to(device)
        fresh = prepare(
            batch, w0, flat, data, train_cfg, set(prep_plan["needs"]), own_preparation(prep_plan["masks"]),
            cfg.burn_in_steps,
            cfg.trajectory.every, cfg.trajectory.centered, cfg.trajectory.complete, prep_plan["basis"],
            cfg.imp.fraction, prunable, layers, on_progress=lambda m: say(f"  prep: {m}"), timings=timings,
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


def run(cfg: RunConfig, out=None, sweep=None, job_name: str | None = None) -> dict:
    """Run the whole grid in four stages: the reference (`full` at every candidate lr, the lr chosen on
    validation), the shared preparation with that recipe, every other member at every candidate lr,
    then one capped extension wave of d for methods whose threshold the ratios did not bracket
    (`benchmark.extension`, decided on validation). Each cell's lr is then selected on validation; the
    leaderboard reads the selected members only.
    Returns {"parent_run_id", "outcomes", "reused", "leaderboard", "uri", "reference_lr", "times"}.

    sweep: a benchmark.sweep.Sweep when this is one job of a Hydra multirun; its parent run is then
    the sweep's, in the sweep's store and experiment."""
    from tqdm import tqdm

    out = out or sys.stdout  # the stream of the call, not the one at import (a test may have swapped it)
    say = lambda msg: print(msg, file=out, flush=True)
    if sweep is not None:
        cfg = dataclasses.replace(cfg, tracking_uri=sweep.uri, experiment=sweep.experiment)
    device, data, make_module, flat = setup(cfg)
    D = flat.D
    planned = plan(cfg, D)  # every bad value is caught before the store is touched
    full_steps = cfg.train.epochs * steps_per_epoch(len(data.y_train), cfg.train.batch_size)
    if cfg.burn_in_steps > full_steps and any(METHODS[m].anchor == "wt" for m in cfg.methods):
        raise UserError(f"burn_in_steps={cfg.burn_in_steps} exceeds the full-space run, which has {full_steps} "
                        f"steps ({cfg.train.epochs} epochs x {steps_per_epoch(len(data.y_train), cfg.train.batch_size)}"
                        f" steps); accepted: 0 <= burn_in_steps <= {full_steps}")
    uri = tracking.resolve_uri(cfg.tracking_uri)
    client, exp_id = tracking.open_store(uri, cfg.experiment_name)  # and a bad store before any training
    say(f"{data.describe()}\nmodel {cfg.model['name']}: D = {D:,} trainable scalars; device {device}; "
        f"budget {cfg.train.epochs} epochs = {full_steps:,} steps of batch {cfg.train.batch_size} for every member")
    say("d per ratio: " + ", ".join(f"D/d={r:g} -> d={dim_for_ratio(D, r):,}" for r in cfg.ratios))
    say(f"{len(cfg.lr_grid)} candidate lr per (method, ratio), chosen on validation: lr x {list(cfg.lr_grid)}")
    reference = [c for c in planned if c.method == "full"]
    others = [c for c in planned if c.method != "full"]

    status, parent = "FAILED", None
    provenance = {"populations": [], "prep_batches": []}
    running: dict = {}  # Cell -> child run id, created RUNNING when its population starts
    run_of: dict = {}  # Cell -> child run id, once logged
    outcomes: list[MemberOutcome] = []  # trained in this invocation
    reused: list[dict] = []  # records of members FINISHED earlier with the same config_hash
    logged: set = set()  # ... and whose child run is closed in the store
    times: dict[str, float] = {}
    records = lambda: reused + [outcome_record(o, D, data.num_classes, run_of.get(o.cell)) for o in outcomes]
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
            "lr_grid": cfg.lr_grid_text, "population": cfg.population,
            "device": str(device)},
            metrics={"D": D, "members": len(planned)})
        client.log_text(parent, json.dumps(cfg.to_dict(), indent=2, default=str), "config.json")
        bar = tqdm(total=0, desc="training", unit="member-epoch", file=out, dynamic_ncols=True)

        def log_start(members: list) -> None:
            """Members exist in MLflow (RUNNING) while they train, so an interrupt can mark them KILLED."""
            index = len(provenance["populations"])
            provenance["populations"].append([c.name for c in members])
            for c in members:
                with interrupts.deferred():  # a member never exists in the store without its params
                    running[c] = tracking.start_run(client, exp_id, c.name, parent_id=parent,
                                                    tags={"dofbench.population": str(index)})
                    tracking.log_values(client, running[c], params=member_params(cfg, c, D, prep_plan))

        def log_done(done: list[MemberOutcome]) -> None:
            outcomes.extend(done)  # before logging: if the store fails, the numbers are still reported
            for o in done:
                if o.cell not in running:  # failed while its subspace was built: a population of its own
                    log_start([o.cell])
                child = run_of[o.cell] = running.pop(o.cell)
                metrics = dict(o.metrics, D=D, d=o.cell.d, ratio=o.cell.ratio)
                tags = {"failure_reason": o.reason} if o.reason else None
                curves = {"val_acc": o.curves.get("val_acc", []), "epoch_train_loss": o.curves.get("train_loss", [])}
                if o.status == "FAILED":
                    if "prep_steps" not in metrics:
                        metrics["prep_steps"] = float(prep_steps(o.cell.method, preps[o.cell.seed], o.cell.d))
                    curves = {}
                tracking.log_values(client, child, None, metrics, curves, tags)
                tracking.end_run(client, child, o.status)
                logged.add(o.cell)

        def stage(cells: list[Cell]) -> list[Cell]:
            """The cells still to train: those not FINISHED in this experiment with the same config_hash
            (those are reused: recorded, listed on the parent, not trained again)."""
            hashes = {c: member_hash(cfg, c, prep_plan) for c in cells}
            finished = {} if cfg.force else finished_members(cfg.experiment_name, set(hashes.values()), uri)
            again = [dict(finished[hashes[c]], num_classes=data.num_classes) for c in cells if hashes[c] in finished]
            if again:
                reused.extend(again)
                say(f"{len(again)} of {len(cells)} members already FINISHED in this experiment with the same "
                    f"config: reused (force=true re-runs them)")
                # They belong to this parent's leaderboard, though their runs sit under an earlier one.
                client.log_text(parent, json.dumps([r["run_id"] for r in reused]), REUSED)
            todo = [c for c in cells if hashes[c] not in finished]
            bar.total += len(todo) * cfg.train.epochs
            bar.refresh()
            return todo

        def train(cells: list[Cell]) -> None:
            train_cells(cfg, cells, preps, flat, data, on_done=log_done, on_epoch=lambda e, K: bar.update(K),
                        on_start=log_start)

        # Stage 1: the reference at every candidate lr; its lr is chosen on validation before anything
        # that depends on it (w_t, the trajectory, IMP) is computed.
        t0 = time.perf_counter()
        prep_plan = None
        preps: dict[int, Preparation] = {s: Preparation(s, init_weights(make_module, s).to(device), model=flat)
                                         for s in cfg.seeds}
        train(stage(reference))
        times["reference_s"] = time.perf_counter() - t0
        chosen = select(records()) if reference else {}
        reference_lr = chosen.get(("full", 1.0))
        if reference:
            say(f"reference: lr {reference_lr:g} chosen on validation" if reference_lr != FAILED else
                "reference: every candidate lr failed; the methods whose preparation follows it fail too")
            tracking.log_values(client, parent, params={"reference_lr": reference_lr})

        # Stage 2: the shared preparation, with the reference's recipe.
        prep_plan = preparation_plan(cfg, planned, D, None if reference_lr == FAILED else reference_lr)
        if any(DIRECTIONS[METHODS[c.method].directions].trajectory and c.d > prep_plan["basis"] for c in others):
            say(f"  prep: lottery subspaces with d > {prep_plan['basis']:,} are skipped: a D x d basis over "
                f"{BASIS_BUDGET_BYTES / 2**30:.0f} GiB")
        todo = stage(others)
        blocked = [c for c in todo if METHODS[c.method].needs and reference_lr == FAILED]
        todo = [c for c in todo if c not in blocked]
        log_done([MemberOutcome(c, "FAILED", "every candidate lr of the reference (full) failed, so its preparation "
                                "(w_t, trajectory, IMP, masks) has no recipe", {"prep_steps": 0.0}) for c in blocked])
        t1 = time.perf_counter()
        prep_times: dict[str, float] = {}
        if todo and reference_lr != FAILED:
            preps, provenance["prep_batches"] = shared_preparation(
                cfg, prep_plan, sorted({c.seed for c in todo}), flat, make_module, data, device, say,
                timings=prep_times)
        times["prep_s"] = time.perf_counter() - t1
        times.update({f"prep.{k}": v for k, v in prep_times.items()})
        say(f"preparation done in {times['prep_s']:.1f}s")

        # Stage 3: every other member at every candidate lr.
        t2 = time.perf_counter()
        train(todo)
        times["members_s"] = time.perf_counter() - t2

        # Stage 4: one capped wave of extra d where the ratios did not bracket a threshold.
        t3 = time.perf_counter()
        extension = plan_extension(cfg, records(), D) if reference_lr not in (None, FAILED) else []
        if extension:
            provenance["extension"] = sorted({(c.method, c.ratio) for c in extension})
            added = {}
            for c in extension:
                added.setdefault(c.method, set()).add(c.d)
            say("extension wave (thresholds not bracketed by the ratios): " + "; ".join(
                f"{m} + d = {', '.join(f'{d:,}' for d in sorted(ds))}" for m, ds in added.items()))
            prep_plan = preparation_plan(cfg, planned + extension, D, reference_lr)  # their config_hash uses it
            todo = stage(extension)
            if any(METHODS[c.method].needs for c in todo):
                # The same plan is read back from the cache; more IMP targets or a larger basis are prepared.
                preps, batches = shared_preparation(cfg, prep_plan, sorted({c.seed for c in todo}), flat,
                                                    make_module, data, device, say)
                provenance["prep_batches"] += batches
            train(todo)
        times["extension_s"] = time.perf_counter() - t3
        bar.close()
        times["total_s"] = time.perf_counter() - t0

        # Selection on validation: tagged on every member (reused ones too); tables read the selected.
        for r in mark(records()):
            if r.get("run_id"):
                tracking.log_values(client, r["run_id"], tags={"selected": str(r["selected"]).lower()})
        lb = publish_leaderboard(client, parent, records(), cfg.dataset["name"], cfg.model["name"])
        tracking.log_values(client, parent, metrics={"wall_time_s": times["total_s"], "prep_time_s": times["prep_s"],
                                                     **{f"time.{k}": v for k, v in times.items()}})
        say(f"\nleaderboard (test accuracy mean ± std over {len(cfg.seeds)} seed(s) of each cell's lr selected on "
            f"validation; ranked by D/d*90):\n{to_text(lb)}")
        for o in outcomes:
            if o.status == "FAILED":
                say(f"FAILED {o.cell.name}: {o.reason}")
        artifacts = client.get_run(parent).info.artifact_uri
        say(f"\n{len(outcomes)} members trained ({len(reused)} reused); parent run {parent} "
            f"in experiment {cfg.experiment_name!r}")
        say(f"wall time {times['total_s']:.1f}s: " + time_split(times))
        say(f"plots and tables: {artifacts}/leaderboard/")
        say(f"to compare them: {tracking.ui_command(uri)}")
        status = "FINISHED"
        return {"parent_run_id": parent, "outcomes": outcomes, "reused": reused, "leaderboard": lb, "uri": uri,
                "reference_lr": reference_lr, "times": times}
    except tracking.StoreFailure as e:
        if bar is not None:
            bar.close()
        # Members logged FINISHED are reused by the next run; what was trained is shown here in any case.
        if outcomes:
            lb = build(records(), cfg.dataset["name"], cfg.model["name"])
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


def time_split(times: dict[str, float]) -> str:
    """'reference selection 12.0s, preparation 30.1s (full run 5.0s, ...), members 300.2s'."""
    labels = {**STAGES, **{f"{kind}_s": d.label or kind for kind, d in DIRECTIONS.items()}}
    parts = [f"{label} {times['prep.' + key]:.1f}s" for key, label in labels.items() if "prep." + key in times]
    return (f"reference selection {times['reference_s']:.1f}s, preparation {times['prep_s']:.1f}s"
            + (f" ({', '.join(parts)})" if parts else "") + f", members {times['members_s']:.1f}s"
            + (f", extension wave {times['extension_s']:.1f}s" if times.get("extension_s", 0) > 0.05 else ""))
