"""Hydra multirun: one parent per sweep, parallel jobs into one fresh SQLite store, SLURM config."""
import pytest

from tests.test_cli import _cli, _raw

SMALL = ["preset=smoke", "dataset.train_size=512", "epochs=1", "burn_in_steps=4", "methods=[full,random_affine]"]


def _check_sweep(tmp_path, proc, jobs: int):
    from mlflow.tracking import MlflowClient

    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "raised" not in proc.stderr  # Hydra turns callback errors into warnings
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("dofbench-sweeps")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    sweep = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(sweep) == 1 and sweep[0].info.status == "FINISHED"  # one parent per sweep
    job_runs = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == sweep[0].info.run_id]
    assert len(job_runs) == jobs and all(r.info.status == "FINISHED" for r in job_runs)
    members = [r for r in runs if r.data.tags.get("mlflow.parentRunId") in {j.info.run_id for j in job_runs}]
    assert len(members) == jobs * 3 and all(r.info.status == "FINISHED" for r in members)
    assert sorted({r.data.params["seed"] for r in members}) == [str(s) for s in range(jobs)]
    files = {a.path for a in client.list_artifacts(sweep[0].info.run_id, "leaderboard/mnist1d-mlp")}
    assert "leaderboard/mnist1d-mlp/leaderboard.csv" in files
    assert sweep[0].data.metrics["jobs"] == jobs


def test_joblib_multirun_with_two_workers_into_one_fresh_sqlite_store(tmp_path):
    proc = _cli(["run", "-m", "seed=0,1", *SMALL, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], tmp_path)
    _check_sweep(tmp_path, proc, jobs=2)


@pytest.mark.slow
def test_submitit_local_multirun(tmp_path):
    proc = _cli(["run", "-m", "seed=0,1", *SMALL, "hydra/launcher=submitit_local"], tmp_path)
    _check_sweep(tmp_path, proc, jobs=2)


def test_slurm_launcher_config_composes_with_user_options(tmp_path):
    proc = _cli(["run", "hydra/launcher=slurm", "hydra.launcher.partition=gpu", "--cfg", "hydra"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "hydra_submitit_launcher.submitit_launcher.SlurmLauncher" in proc.stdout
    assert "partition: gpu" in proc.stdout and "gpus_per_node: 1" in proc.stdout


@pytest.mark.parametrize("override", ["hydra.callbacks.x._target_=os.system", "+model._target_=os.system",
                                      "hydra.launcher._target_=builtins.exec"])
def test_target_overrides_are_refused(tmp_path, override):
    proc = _cli(["run", override], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith(f"error: override {override!r} is not accepted")
    assert not (tmp_path / "mlflow.db").exists()


def test_seed_is_a_one_seed_list():
    from benchmark.config import build_config

    assert build_config(_raw(["seed=3"])).seeds == (3,)
    assert build_config(_raw([])).seeds == (0, 1, 2)
