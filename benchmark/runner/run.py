"""`python -m benchmark run`: config -> data + model -> shared preparation -> population training -> MLflow."""
from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from pathlib import Path

from tqdm import tqdm

from benchmark.config.build import RunConfig, dim_for_ratio
from benchmark.core.errors import UserError
from benchmark.data.registry import selection_metric
from benchmark.data.text import unigram_bits
from benchmark.methods import DIRECTIONS, METHODS, prep_steps
from benchmark.runner import provenance, tracking
from benchmark.runner.context import setup
from benchmark.runner.extension import plan_extension
from benchmark.runner.grid import (
    Cell,
    MemberOutcome,
    member_hash,
    member_params,
    never_pruned,
    outcome_record,
    plan,
    preparation_plan,
    train_cells,
)
from benchmark.runner.memory import check_fits, default_memory_budget, resident_mb
from benchmark.runner.prep_cache import shared_preparation
from benchmark.training.loop import steps_per_epoch
from benchmark.training.prep import STAGES, Preparation, init_weights
from leaderboards import build, to_text
from leaderboards.findings import FILE as FINDINGS
from leaderboards.findings import findings
from leaderboards.publish import publish
from leaderboards.selection import FAILED, mark, select
from leaderboards.source import REUSED, finished_members
from leaderboards.write import write


def run(cfg: RunConfig, out=None, sweep=None, job_name: str | None = None, command: str | None = None) -> dict:
    """Run the whole grid in four stages: the reference (`full` at every candidate lr, the lr chosen on
    validation), the shared preparation with that recipe, every other member at every candidate lr,
    then one capped extension wave of d for methods whose threshold the ratios did not bracket
    (`benchmark.runner.extension`, decided on validation). Each cell's lr is then selected on validation; the
    leaderboard reads the selected members only.
    Returns {"parent_run_id", "outcomes", "reused", "leaderboard", "uri", "reference_lr", "times"}.

    sweep: a benchmark.runner.sweep.Sweep when this is one job of a Hydra multirun; its parent run is then
    the sweep's, in the sweep's store and experiment. command: the command line, for provenance.json
    (written with the leaderboard's files and findings.json where cfg.out names a folder)."""
    out = out or sys.stdout  # the stream of the call, not the one at import (a test may have swapped it)
    say = lambda msg: print(msg, file=out, flush=True)
    if sweep is not None:
        cfg = dataclasses.replace(cfg, tracking_uri=sweep.uri, experiment=sweep.experiment)
    meter = provenance.StageMeter()
    device, data, make_module, flat = setup(cfg)
    # Fixed once: which members share a population changes their rounding, so it is recorded and repeatable.
    cfg = dataclasses.replace(cfg, memory_budget_mb=cfg.memory_budget_mb or default_memory_budget(device) / 2**20)
    planned = plan(cfg, flat.D, flat)  # every bad value is caught before the store is touched
    check_burn_in(cfg, len(data.y_train))
    check_prunable(cfg, flat, planned)
    memory_note = check_fits(cfg.memory_budget_mb, flat, data, [c.d for c in planned], cfg.train.batch_size, device)
    uri = tracking.resolve_uri(cfg.tracking_uri)
    client, exp_id = tracking.open_store(uri, cfg.experiment_name)  # and a bad store before any training
    say(describe(cfg, data, flat.D, device))
    if memory_note:
        say(memory_note)
    job = Job(cfg, data, flat, make_module, device, tracking.Recorder(client, exp_id), uri, say, out, meter)
    meter.lap("setup")
    status = "FAILED"
    try:
        job.open(sweep, job_name, len(planned))
        reference_lr = job.reference([c for c in planned if c.method == "full"])
        job.members([c for c in planned if c.method != "full"], planned, reference_lr)
        job.extension(planned, reference_lr)
        result = job.publish(reference_lr)
        if cfg.out:
            job.write_result(result["leaderboard"], command or "benchmark.runner.run.run (called from Python)")
        status = "FINISHED"
        return result
    except tracking.StoreFailure as e:
        raise job.store_failed(e) from None
    except KeyboardInterrupt:
        status = "KILLED"
        if job.recorder.parent is not None:
            job.recorder.kill_running()
        raise
    finally:
        job.close(status)


def check_burn_in(cfg: RunConfig, n_train: int) -> None:
    """burn_in_steps must lie within the full-space run, where a requested method starts from w_t."""
    steps = steps_per_epoch(n_train, cfg.train.batch_size)
    full_steps = cfg.train.epochs * steps
    if cfg.burn_in_steps > full_steps and any(METHODS[m].anchor == "wt" for m in cfg.methods):
        raise UserError(f"burn_in_steps={cfg.burn_in_steps} exceeds the full-space run, which has {full_steps} "
                        f"steps ({cfg.train.epochs} epochs x {steps} steps); accepted: 0 <= burn_in_steps <= "
                        f"{full_steps}")


def check_prunable(cfg: RunConfig, flat, planned: list[Cell]) -> None:
    """With imp.prunable=weights the biases are always kept, so a pruning method needs d >= their count."""
    fixed = never_pruned(cfg, flat)
    if not fixed:
        return
    low = sorted({(c.ratio, c.d) for c in planned if METHODS[c.method].family == "pruning" and c.d < fixed})
    if low:
        ratio, d = low[-1]
        raise UserError(f"ratio {ratio:g} gives d = {d} for the pruning methods, below the {fixed} biases that "
                        f"imp.prunable=weights always keeps; accepted: ratios with d >= {fixed} "
                        f"(ratio <= {flat.D / fixed:.0f}), or imp.prunable=all")


def describe(cfg: RunConfig, data, D: int, device) -> str:
    full_steps = cfg.train.epochs * steps_per_epoch(len(data.y_train), cfg.train.batch_size)
    return "\n".join([
        f"{data.describe()}\nmodel {cfg.model['name']}: D = {D:,} trainable scalars; device {device}; "
        f"budget {cfg.train.epochs} epochs = {full_steps:,} steps of batch {cfg.train.batch_size} for every member; "
        f"populations within memory_budget_mb = {cfg.memory_budget_mb:,.0f} MiB, training and evaluation",
        "d per ratio: " + ", ".join(f"D/d={r:g} -> d={dim_for_ratio(D, r):,}" for r in cfg.ratios),
        f"{len(cfg.lr_grid)} candidate lr per (method, ratio), chosen on validation: lr x {list(cfg.lr_grid)}"])


class Job:
    """One invocation's state between its stages: what was trained or reused, the preparation, the
    recorder of its runs in the store, and the time each stage took."""

    def __init__(self, cfg, data, flat, make_module, device, recorder: tracking.Recorder, uri: str, say, out,
                 meter: provenance.StageMeter | None = None):
        self.cfg, self.data, self.flat, self.make_module, self.device = cfg, data, flat, make_module, device
        self.recorder, self.uri, self.say, self.out = recorder, uri, say, out
        self.meter = meter or provenance.StageMeter()  # wall time and peak resident memory per stage
        self.D = flat.D
        self.outcomes: list[MemberOutcome] = []  # trained in this invocation
        self.resident: list[float] = []  # resident MiB after each population: flat unless something leaks
        self.reused: list[dict] = []  # records of members FINISHED earlier with the same config_hash
        self.times: dict[str, float] = {}
        self.prep_plan: dict | None = None
        self.preps: dict[int, Preparation] = {
            s: Preparation(s, init_weights(make_module, s).to(device), model=flat) for s in cfg.seeds}
        self.bar = None
        self.t0 = time.perf_counter()

    def records(self) -> list[dict]:
        run_of = self.recorder.run_of
        on = selection_metric(self.cfg.dataset["name"])  # reused members logged before select_on get it too
        return [dict(r, select_on=on) for r in self.reused] + [
            dict(outcome_record(o, self.D, self.data.num_classes, run_of.get(o.cell)), select_on=on)
            for o in self.outcomes]

    # --- stages -------------------------------------------------------------------------------------

    def open(self, sweep, job_name: str | None, members: int) -> None:
        cfg = self.cfg
        self.recorder.open(
            job_name or f"{cfg.preset}-{time.strftime('%Y%m%d-%H%M%S')}",
            sweep.parent_run_id if sweep else None, {"dofbench.kind": "job" if sweep else "sweep"},
            params={"dataset": cfg.dataset["name"], "model": cfg.model["name"], "D": self.D,
                    "methods": ",".join(cfg.methods), "ratios": ",".join(f"{r:g}" for r in cfg.ratios),
                    "seeds": ",".join(map(str, cfg.seeds)), "epochs": cfg.train.epochs, "preset": cfg.preset,
                    "lr_grid": cfg.lr_grid_text, "population": cfg.population, "device": str(self.device)},
            metrics={"D": self.D, "members": members},
            config=json.dumps(cfg.to_dict(), indent=2, default=str))
        self.bar = tqdm(total=0, desc="training", unit="member-epoch", file=self.out, dynamic_ncols=True)

    def reference(self, cells: list[Cell]) -> float | None:
        """Stage 1: the reference at every candidate lr; its lr is chosen on validation before anything
        that depends on it (w_t, the trajectory, IMP) is computed. None: no reference requested."""
        self.train(self.todo(cells))
        self.times["reference_s"] = time.perf_counter() - self.t0
        self.meter.lap("reference")
        reference_lr = select(self.records()).get(("full", 1.0)) if cells else None
        if cells:
            self.say(f"reference: lr {reference_lr:g} chosen on validation" if reference_lr != FAILED else
                     "reference: every candidate lr failed; the methods whose preparation follows it fail too")
            tracking.log_values(self.recorder.client, self.recorder.parent, params={"reference_lr": reference_lr})
        return reference_lr

    def members(self, others: list[Cell], planned: list[Cell], reference_lr) -> None:
        """Stages 2 and 3: the shared preparation with the reference's recipe, then every other member."""
        self.prep_plan = preparation_plan(self.cfg, planned, self.D, None if reference_lr == FAILED else reference_lr)
        todo = self.todo(others)
        blocked = [c for c in todo if METHODS[c.method].needs and reference_lr == FAILED]
        todo = [c for c in todo if c not in blocked]
        self.done([MemberOutcome(c, "FAILED", "every candidate lr of the reference (full) failed, so its preparation "
                                 "(w_t, trajectory, IMP, masks) has no recipe", {"prep_steps": 0.0}) for c in blocked])
        t1 = time.perf_counter()
        prep_times: dict[str, float] = {}
        if todo and reference_lr != FAILED:
            self.prepare(todo, prep_times)
        self.times["prep_s"] = time.perf_counter() - t1
        self.meter.lap("preparation")
        self.times.update({f"prep.{k}": v for k, v in prep_times.items()})
        self.say(f"preparation done in {self.times['prep_s']:.1f}s")
        t2 = time.perf_counter()
        self.train(todo)
        self.times["members_s"] = time.perf_counter() - t2
        self.meter.lap("members")

    def extension(self, planned: list[Cell], reference_lr) -> None:
        """Stage 4: one capped wave of extra d where the ratios did not bracket a threshold."""
        t3 = time.perf_counter()
        # language modelling: the wave targets the loss saved over the unigram model, as its leaderboard does
        floor = (unigram_bits(self.data, "val") * math.log(2)
                 if selection_metric(self.cfg.dataset["name"]) == "val_loss" else None)
        wave = (plan_extension(self.cfg, self.records(), self.D, model=self.flat, floor_loss=floor)
                if reference_lr not in (None, FAILED) else [])
        if wave:
            self.recorder.provenance["extension"] = sorted({(c.method, c.ratio) for c in wave})
            added: dict[str, set] = {}
            for c in wave:
                added.setdefault(c.method, set()).add(c.d)
            self.say("extension wave (thresholds not bracketed by the ratios): " + "; ".join(
                f"{m} + d = {', '.join(f'{d:,}' for d in sorted(ds))}" for m, ds in added.items()))
            self.prep_plan = preparation_plan(self.cfg, planned + wave, self.D, reference_lr)  # their config_hash
            todo = self.todo(wave)
            if any(METHODS[c.method].needs for c in todo):
                # The same plan is read back from the cache; more IMP targets or a larger basis are prepared.
                self.prepare(todo)
            self.train(todo)
        self.times["extension_s"] = time.perf_counter() - t3
        self.meter.lap("extension")
        self.bar.close()
        self.times["total_s"] = time.perf_counter() - self.t0

    def publish(self, reference_lr) -> dict:
        """Selection on validation, tagged on every member (reused ones too); the leaderboard of the
        selected members on the parent run; the report."""
        cfg, client, parent, times, say = self.cfg, self.recorder.client, self.recorder.parent, self.times, self.say
        for r in mark(self.records()):
            if r.get("run_id"):
                tracking.log_values(client, r["run_id"], tags={"selected": str(r["selected"]).lower()})
        lb = publish(client, parent, self.records(), cfg.dataset["name"], cfg.model["name"])
        tracking.log_values(client, parent, metrics={"wall_time_s": times["total_s"], "prep_time_s": times["prep_s"],
                                                     **{f"time.{k}": v for k, v in times.items()},
                                                     **{f"peak_rss_mb.{k}": v for k, v in self.meter.peak_rss_mb.items()}},
                            curves={"resident_mb": self.resident} if self.resident else None)
        say(f"\nleaderboard (test accuracy mean ± std over {len(cfg.seeds)} seed(s) of each cell's lr selected on "
            f"validation; ranked by D/d*90):\n{to_text(lb)}")
        for o in self.outcomes:
            if o.status == "FAILED":
                say(f"FAILED {o.cell.name}: {o.reason}")
        artifacts = client.get_run(parent).info.artifact_uri
        say(f"\n{len(self.outcomes)} members trained ({len(self.reused)} reused); parent run {parent} "
            f"in experiment {cfg.experiment_name!r}")
        say(f"wall time {times['total_s']:.1f}s: " + time_split(times))
        say(f"plots and tables: {artifacts}/leaderboard/")
        runs_link, board_link = tracking.ui_links(self.uri, self.recorder.exp_id, parent)
        say(f"to compare them: {tracking.ui_command(self.uri)}, then open\n  {runs_link}  (the runs)\n"
            f"  {board_link}  (this run's leaderboard)")
        return {"parent_run_id": parent, "outcomes": self.outcomes, "reused": self.reused, "leaderboard": lb,
                "uri": self.uri, "reference_lr": reference_lr, "times": times}

    def write_result(self, lb, command: str) -> None:
        """The leaderboard's files, findings.json and provenance.json in cfg.out: a result `verify` can re-run."""
        folder = Path(self.cfg.out)
        self.meter.lap("publish")
        write(lb, folder)
        (folder / FINDINGS).write_text(json.dumps(findings(lb), indent=2) + "\n")
        provenance.write(folder, provenance.record(
            self.cfg.to_dict() | {"out": None, "force": False, "tracking_uri": None}, command, self.meter,
            self.cfg.memory_budget_mb, str(self.device),
            {"times_s": {k: round(v, 3) for k, v in self.times.items()}, "members": len(self.outcomes),
             "reused": len(self.reused)}))
        self.say(f"result written to {folder}/ (leaderboard files, findings.json, provenance.json); "
                 f"check it regenerates: python -m benchmark verify {folder}")

    def close(self, status: str) -> None:
        if self.bar is not None:
            self.bar.close()
        self.recorder.close(status)

    def store_failed(self, e: tracking.StoreFailure) -> tracking.StoreFailure:
        """Members logged FINISHED are reused by the next run; what was trained is shown here in any case."""
        if self.bar is not None:
            self.bar.close()
        if self.outcomes:
            lb = build(self.records(), self.cfg.dataset["name"], self.cfg.model["name"])
            self.say(f"\nthe tracking store failed; {len(self.outcomes) - len(self.recorder.logged)} member(s) "
                     f"trained in this run did not reach it. Leaderboard of everything computed:\n{to_text(lb)}")
        kept = len(self.recorder.logged) + len(self.reused)
        return tracking.StoreFailure(
            f"{e}. " + (f"The {kept} member(s) already in the store are kept and will be reused: " if kept else "")
            + "free space or restore write access (or choose another tracking.uri=), then re-run the same command"
            + (" to resume" if kept else ""))

    # --- helpers of the stages ----------------------------------------------------------------------

    def todo(self, cells: list[Cell]) -> list[Cell]:
        """The cells still to train: those not FINISHED in this experiment with the same config_hash
        (those are reused: recorded, listed on the parent, not trained again)."""
        cfg = self.cfg
        hashes = {c: member_hash(cfg, c, self.prep_plan) for c in cells}
        killed = self.recorder.abandoned(set(hashes.values()))
        if killed:
            self.say(f"{len(killed)} member(s) of this config were left RUNNING by an invocation that did not end "
                     f"(parent run(s) {', '.join(sorted({p for _, p in killed}))}): marked KILLED and trained again")
        finished = {} if cfg.force else finished_members(cfg.experiment_name, set(hashes.values()), self.uri)
        again = [dict(finished[hashes[c]], num_classes=self.data.num_classes) for c in cells if hashes[c] in finished]
        if again:
            self.reused.extend(again)
            self.say(f"{len(again)} of {len(cells)} members already FINISHED in this experiment with the same "
                     f"config: reused (force=true re-runs them)")
            # They belong to this parent's leaderboard, though their runs sit under an earlier one.
            self.recorder.client.log_text(self.recorder.parent, json.dumps([r["run_id"] for r in self.reused]),
                                          REUSED)
        todo = [c for c in cells if hashes[c] not in finished]
        self.bar.total += len(todo) * cfg.train.epochs
        self.bar.refresh()
        return todo

    def prepare(self, todo: list[Cell], timings: dict[str, float] | None = None) -> None:
        preps, batches = shared_preparation(self.cfg, self.prep_plan, sorted({c.seed for c in todo}), self.flat,
                                            self.make_module, self.data, self.device, self.say, timings=timings)
        self.preps.update(preps)
        self.recorder.provenance["prep_batches"] += batches

    def train(self, cells: list[Cell]) -> None:
        train_cells(self.cfg, cells, self.preps, self.flat, self.data, on_done=self.done,
                    on_epoch=lambda e, K: self.bar.update(K),
                    on_start=lambda cells: self.recorder.start(cells, self.params))

    def params(self, c: Cell) -> dict:
        return member_params(self.cfg, c, self.D, self.prep_plan)

    def done(self, outcomes: list[MemberOutcome]) -> None:
        self.outcomes.extend(outcomes)  # before logging: if the store fails, the numbers are still reported
        self.resident.append(resident_mb())
        for o in outcomes:
            if o.cell not in self.recorder.running:  # failed while its subspace was built: a population of its own
                self.recorder.start([o.cell], self.params)
            metrics = dict(o.metrics, D=self.D, d=o.cell.d, ratio=o.cell.ratio)
            curves = {"val_acc": o.curves.get("val_acc", []), "epoch_train_loss": o.curves.get("train_loss", [])}
            if o.status == "FAILED":
                if "prep_steps" not in metrics:
                    metrics["prep_steps"] = float(prep_steps(o.cell.method, self.preps[o.cell.seed], o.cell.d))
                curves = {}
            self.recorder.finish(o.cell, o.status, metrics, curves, {"failure_reason": o.reason} if o.reason else None)


def time_split(times: dict[str, float]) -> str:
    """'reference selection 12.0s, preparation 30.1s (full run 5.0s, ...), members 300.2s'."""
    labels = {**STAGES, **{f"{kind}_s": d.label or kind for kind, d in DIRECTIONS.items()}}
    parts = [f"{label} {times['prep.' + key]:.1f}s" for key, label in labels.items() if "prep." + key in times]
    return (f"reference selection {times['reference_s']:.1f}s, preparation {times['prep_s']:.1f}s"
            + (f" ({', '.join(parts)})" if parts else "") + f", members {times['members_s']:.1f}s"
            + (f", extension wave {times['extension_s']:.1f}s" if times.get("extension_s", 0) > 0.05 else ""))
