"""Hydra multirun: one MLflow parent run per sweep, created with the store before any job starts.

`python -m benchmark run -m seed=0,1,2 model=mlp,cnn1d` runs one job per combination through Hydra's
launcher (the basic one: one after another; `hydra/launcher=joblib`: local processes;
`hydra/launcher=submitit_slurm`: a SLURM cluster). Before the first job, `SweepParent` opens the
tracking store (so a fresh SQLite store's migrations run once, not raced by parallel jobs), creates the
sweep's experiment and parent run, and writes both to <sweep dir>/dofbench_sweep.json, which every job
reads (the sweep dir is on a filesystem the jobs share). Each job is a run nested under the sweep's
parent, with its members under it; after the last job the parent gets one leaderboard per
(dataset, model) and its status.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from hydra.experimental.callback import Callback

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


class SweepParent(Callback):
    def on_multirun_start(self, config, **kwargs) -> None:
        from benchmark import tracking

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
        (sweep_dir / SWEEP_FILE).write_text(json.dumps(Sweep(parent, uri, experiment).__dict__))

    def on_multirun_end(self, config, **kwargs) -> None:
        from benchmark import tracking
        from benchmark.run import publish_leaderboard
        from leaderboards.source import records_from_mlflow

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
            publish_leaderboard(client, sweep.parent_run_id, records, dataset, model, f"leaderboard/{dataset}-{model}")
        ok = bool(jobs) and all(j.info.status == "FINISHED" for j in jobs)
        tracking.log_values(client, sweep.parent_run_id, metrics={"jobs": len(jobs)})
        tracking.end_run(client, sweep.parent_run_id, "FINISHED" if ok else "FAILED")
