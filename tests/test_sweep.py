"""Hydra multirun: one parent per sweep, parallel jobs into one fresh SQLite store or a real
`mlflow server` on PostgreSQL, the SLURM config."""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import free_port, wait_for_server
from tests.test_cli import _cli, _raw

SMALL = ["preset=smoke", "dataset.train_size=512", "epochs=1", "burn_in_steps=4", "methods=[full,random_affine]",
         "lr_grid=[1]", "extension.enabled=false"]


def _check_sweep(tmp_path, proc, jobs: int, uri: str | None = None):
    from mlflow.tracking import MlflowClient

    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "raised" not in proc.stderr  # Hydra turns callback errors into warnings
    client = MlflowClient(uri or f"sqlite:///{tmp_path / 'mlflow.db'}")
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
    from benchmark.config.build import build_config

    assert build_config(_raw(["seed=3"])).seeds == (3,)
    assert build_config(_raw([])).seeds == (0, 1, 2)


def _postgres_bin(name: str) -> str | None:
    return shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None)


@pytest.fixture
def postgres():
    """A throw-away PostgreSQL cluster on loopback; yields its SQLAlchemy URI."""
    initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
    if not (initdb and pg_ctl):
        message = "PostgreSQL server binaries not found (apt-get install postgresql; .ci/run does)"
        if os.environ.get("DOFBENCH_REQUIRE_POSTGRES"):
            pytest.fail(message)
        pytest.skip(message)
    root = Path(tempfile.mkdtemp(prefix="dofbench-pg-"))
    os.chmod(root, 0o777)
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # postgres refuses to run as root
    port = free_port()
    data = root / "data"
    subprocess.run([*as_pg, initdb, "-D", str(data), "-A", "trust", "-U", "dofbench", "--no-sync"],
                   check=True, capture_output=True)
    subprocess.run([*as_pg, pg_ctl, "-D", str(data), "-l", str(root / "log"), "-w", "-o",
                    f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                   check=True, capture_output=True)
    try:
        subprocess.run([*as_pg, _postgres_bin("createdb") or "createdb", "-h", "127.0.0.1", "-p", str(port),
                        "-U", "dofbench", "mlflow"], check=True, capture_output=True)
        yield f"postgresql+psycopg2://dofbench@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run([*as_pg, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def mlflow_server(postgres, tmp_path):
    """A real `mlflow server` on loopback: PostgreSQL backend, proxied artifact root. Yields its URL."""
    pytest.importorskip("psycopg2", reason="the PostgreSQL driver comes with the test extra")
    port = free_port()
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", postgres,
                               "--artifacts-destination", str(tmp_path / "artifacts"), "--host", "127.0.0.1",
                               "--port", str(port), "--workers", "1"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(url, server, tmp_path / "server.log")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_two_job_sweep_against_mlflow_server_on_postgresql(tmp_path, mlflow_server):
    work = tmp_path / "work"
    work.mkdir()
    proc = _cli(["run", "-m", "seed=0,1", *SMALL, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], work,
                uri=mlflow_server)
    _check_sweep(work, proc, jobs=2, uri=mlflow_server)
    assert not (work / "mlflow.db").exists()  # everything went to the server
    assert any((tmp_path / "artifacts").rglob("leaderboard.csv"))  # artifacts through the server's proxy


def _sweep_runs(tmp_path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("dofbench-sweeps").experiment_id], max_results=1000)
    sweep = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    jobs = {r.info.run_name: r for r in runs if sweep and r.data.tags.get("mlflow.parentRunId") == sweep[0].info.run_id}
    return sweep, jobs


def test_a_job_with_a_bad_value_fails_alone_and_the_sweep_says_so(tmp_path):
    proc = _cli(["run", "-m", "epochs=1,0", *[o for o in SMALL if not o.startswith("epochs")]], tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "error: job1: epochs=1,0" not in proc.stderr  # the job's own overrides, not the sweep's
    assert re.search(r"^error: job1: epochs=0 .*epochs", proc.stderr, re.M), proc.stderr[-2000:]
    assert "sweep: 1 of 2 job(s) did not finish" in proc.stderr
    sweep, jobs = _sweep_runs(tmp_path)
    assert [s.info.status for s in sweep] == ["FAILED"] and sweep[0].data.metrics["failed_jobs"] == 1
    status = {name.split(":")[0]: (r.info.status, r.data.tags.get("failure_reason", "")) for name, r in jobs.items()}
    assert status["job0"] == ("FINISHED", "")
    assert status["job1"][0] == "FAILED" and "epochs" in status["job1"][1]


@pytest.mark.slow
def test_sigterm_to_a_sweep_closes_its_parent_killed(tmp_path):
    import signal

    args = ["run", "-m", "seed=0,1", *SMALL, "dataset.train_size=2048", "epochs=4"]
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.Popen([sys.executable, "-m", "benchmark", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not glob.glob(str(tmp_path / "multirun" / "*" / "*" / "dofbench_sweep.json")):
        time.sleep(0.5)
    while time.time() < deadline and not _sweep_runs(tmp_path)[1]:  # into the first job
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "Traceback" not in err, err[-3000:]
    sweep, jobs = _sweep_runs(tmp_path)
    assert [s.info.status for s in sweep] == ["KILLED"]
    assert jobs and all(r.info.status == "KILLED" for r in jobs.values())
