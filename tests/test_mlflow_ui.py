"""The MLflow UI as a user meets it: the links `run` prints open the runs in the "Model training" view
and the parent run's leaderboard files, rendered by a real headless browser.

Needs Chromium (skips cleanly without it; `.ci/run` installs it from the OS packages)."""
import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import free_port, wait_for_server

BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


def _render(url: str, tmp_path, wanted: list[str], screenshot: str | None = None) -> str:
    """The DOM after the page's scripts ran (headless Chromium, virtual time), rendered again (a fresh
    profile each time) while a cold server leaves any of `wanted` missing, at most three times."""
    for _ in range(3):
        profile = tmp_path / f"chromium-{len(list(tmp_path.glob('chromium-*')))}"
        args = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--user-data-dir={profile}", "--window-size=1500,1000", "--virtual-time-budget=30000"]
        dom = subprocess.run(args + ["--dump-dom", url], capture_output=True, text=True, timeout=180).stdout
        if all(w in dom for w in wanted):
            break
    if screenshot:
        subprocess.run(args + [f"--screenshot={screenshot}", url], capture_output=True, timeout=180)
    return dom


@pytest.mark.slow
@pytest.mark.skipif(BROWSER is None, reason="no Chromium on this machine")
def test_the_printed_ui_links_show_the_runs_and_the_leaderboard_in_a_browser(tmp_path):
    uri = f"sqlite:///{tmp_path}/m.db"
    env = dict(os.environ, DOFBENCH_CACHE=str(tmp_path / "cache"))
    run = subprocess.run([sys.executable, "-m", "benchmark", "run", "preset=smoke", "methods=[full,random_affine]",
                          "ratios=[1,8]", "epochs=1", "dataset.train_size=256", f"tracking.uri={uri}"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    runs_link, board_link = re.findall(r"http://127\.0\.0\.1:5000/#/experiments/\S+", run.stdout)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
                               "--default-artifact-root", str(tmp_path / "mlruns"), "--host", "127.0.0.1",
                               "--port", str(port), "--workers", "1"],
                              cwd=tmp_path, stdout=open(tmp_path / "ui.log", "w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(base, server, tmp_path / "ui.log", timeout=120)
        shot = os.environ.get("DOFBENCH_UI_SCREENSHOT")  # where to keep a picture of the runs view
        from mlflow.tracking import MlflowClient

        client = MlflowClient(uri)
        exp = client.get_experiment_by_name("mnist1d-mlp")
        runs = client.search_runs([exp.experiment_id])
        parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
        want_runs = [parent.info.run_name, "mnist1d-mlp"]
        page = _render(runs_link.replace("http://127.0.0.1:5000", base), tmp_path, want_runs, shot)
        # The "Model training" view: the experiment and its parent run (the members are nested under it),
        # not the GenAI view MLflow 3 opens by default.
        missing = [w for w in want_runs if w not in page] + (["not GenAI"] if "Evaluation runs" in page else [])
        assert not missing, (missing, re.sub(r"<[^>]*>", " ", page)[-2000:])
        want_board = ["leaderboard.md", "accuracy_vs_compression.png", "per_layer_shift.png", "mnist1d / mlp",
                      "random_affine"]  # the file tree, and leaderboard.md rendered with the members' methods
        board = _render(board_link.replace("http://127.0.0.1:5000", base), tmp_path, want_board)
        missing = [w for w in want_board if w not in board]
        assert not missing, (missing, re.sub(r"<[^>]*>", " ", board)[-2000:])
    finally:
        server.terminate()
        server.wait(timeout=30)
