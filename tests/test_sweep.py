"""Hydra multirun: one parent per sweep, parallel jobs into one fresh SQLite store or a real
`mlflow server` on PostgreSQL, the SLURM config."""
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.test_cli import _cli, _raw

SMALL = ["preset=smoke", "dataset.train_size=512", "epochs=1", "burn_in_steps=4", "methods=[full,random_affine]"]


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
    from benchmark.config import build_config

    assert build_config(_raw(["seed=3"])).seeds == (3,)
    assert build_config(_raw([])).seeds == (0, 1, 2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    port = _free_port()
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
    port = _free_port()
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", postgres,
                               "--artifacts-destination", str(tmp_path / "artifacts"), "--host", "127.0.0.1",
                               "--port", str(port), "--workers", "1"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.time() > deadline:
                pytest.fail(f"mlflow server did not come up: {(tmp_path / 'server.log').read_text()[-2000:]}")
            time.sleep(1)
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
