"""Hydra multirun: one MLflow parent run per sweep, created with the store before any job starts.

`python -m benchmark run -m seed=0,1,2 model=mlp,cnn1d` runs one job per combination through Hydra's
launcher (the basic one: one after another; `hydra/launcher=joblib`: local processes;
`hydra/launcher=submitit_slurm`: a SLURM cluster). Before the first job, `SweepParent` opens the
tracking store (so a fresh SQLite store's migrations run once, not raced by parallel jobs), creates the
sweep's experiment and parent run, and writes both to <sweep dir>/dofbench_sweep.json, which every job
reads (the sweep dir is on a filesystem the jobs share). Each job is a run nested under the sweep's
parent, with its members under it; after the last job the parent gets one leaderboard per
(dataset, model) and its status. A job stopped by a bad value is FAILED with its reason and the
others go on; the sweep then exits 1 naming it. A sweep stopped early (Ctrl-C, SIGTERM, a crash)
still closes its parent, KILLED or FAILED, when the launcher exits.
"""
from __future__ import annotations

import atexit
import contextlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from hydra.experimental.callback import Callback

from benchmark.core.errors import UserError
from benchmark.runner import interrupts, tracking
from leaderboards.publish import publish
from leaderboards.source import records_from_mlflow

SWEEP_FILE = "dofbench_sweep.json"
DEFAULT_EXPERIMENT = "dofbench-sweeps"


@dataclass(frozen=True)
class Sweep:
    parent_run_id: str
    uri: str
    experiment: str


def read_sweep(sweep_dir: str | Path) -> Sweep | None:
    path = Path(sweep_dir) / SWEEP_FILE
    return Sweep(**json.loads(path.read_text())) if path.is_file() else None


def record_failed_job(sweep: Sweep, name: str, reason: str) -> None:
    """A job stopped by a bad value or a failing store: FAILED under the sweep's parent with its reason
    (its own run when it got as far as creating one, else a new run), so the sweep's end reports it."""
    with contextlib.suppress(UserError):  # a store that fails here is already in the job's error line
        client, exp_id = tracking.open_store(sweep.uri, sweep.experiment)
        jobs = client.search_runs([exp_id], f"tags.mlflow.parentRunId = '{sweep.parent_run_id}'")
        run_id = next((j.info.run_id for j in jobs if j.info.run_name == name), None)
        if run_id is None:
            run_id = tracking.start_run(client, exp_id, name, parent_id=sweep.parent_run_id,
                                        tags={"dofbench.kind": "job"})
        tracking.log_values(client, run_id, tags={"failure_reason": reason[:5000]})
        tracking.end_run(client, run_id, "FAILED")


class SweepParent(Callback):
    _open: Sweep | None = None  # created and not yet closed

    def on_multirun_start(self, config, **kwargs) -> None:
        uri = tracking.resolve_uri(config.tracking.uri)
        experiment = config.tracking.experiment or DEFAULT_EXPERIMENT
        client, exp_id = tracking.open_store(uri, experiment)
        overrides = " ".join(config.hydra.overrides.task)
        parent = tracking.start_run(client, exp_id, f"sweep-{time.strftime('%Y%m%d-%H%M%S')}",
                                    tags={"dofbench.kind": "sweep", "dofbench.overrides": overrides})
        launcher = str(config.hydra.launcher.get("_target_", "basic")).rsplit(".", 1)[-1]
        tracking.log_values(client, parent, params={"overrides": overrides[:500], "launcher": launcher})
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        self._open = Sweep(parent, uri, experiment)
        (sweep_dir / SWEEP_FILE).write_text(json.dumps(self._open.__dict__))
        interrupts.install()
        atexit.register(self._close_if_open)

    def _close_if_open(self) -> None:
        """The launcher is exiting before on_multirun_end: Ctrl-C/SIGTERM (KILLED) or a crash (FAILED)."""
        if self._open is None:
            return
        sweep, self._open = self._open, None
        with contextlib.suppress(UserError):
            client, _ = tracking.open_store(sweep.uri, sweep.experiment)
            tracking.end_run(client, sweep.parent_run_id, "KILLED" if interrupts.received() else "FAILED")

    def on_multirun_end(self, config, **kwargs) -> None:
        sweep = read_sweep(config.hydra.sweep.dir)
        if sweep is None:
            return
        client, exp_id = tracking.open_store(sweep.uri, sweep.experiment)
        jobs = client.search_runs([exp_id], f"tags.mlflow.parentRunId = '{sweep.parent_run_id}'")
        groups: dict = {}
        for job in jobs:
            for key, recs in records_from_mlflow(parent_run_id=job.info.run_id, tracking_uri=sweep.uri).items():
                groups.setdefault(key, []).extend(recs)
        for (dataset, model), records in groups.items():
            publish(client, sweep.parent_run_id, records, dataset, model, f"leaderboard/{dataset}-{model}")
        failed = [j for j in jobs if j.info.status != "FINISHED"]
        tracking.log_values(client, sweep.parent_run_id, metrics={"jobs": len(jobs), "failed_jobs": len(failed)})
        tracking.end_run(client, sweep.parent_run_id, "FINISHED" if jobs and not failed else "FAILED")
        self._open = None
        if failed:
            lines = [f"  {j.info.run_name}: {j.info.status} {j.data.tags.get('failure_reason', '')}".rstrip()
                     for j in failed]
            print(f"sweep: {len(failed)} of {len(jobs)} job(s) did not finish:\n" + "\n".join(lines), file=sys.stderr)
            raise SystemExit(1)  # a callback's exception would only be a warning
