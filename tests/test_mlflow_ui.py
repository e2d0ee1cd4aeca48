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


def _render(url: str, tmp_path, screenshot: str | None = None) -> str:
    """The DOM after the page's scripts ran (headless Chromium, virtual time)."""
    args = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1500,1000", "--virtual-time-budget=30000"]
    if screenshot:
        subprocess.run(args + [f"--screenshot={screenshot}", url], capture_output=True, timeout=180)
    return subprocess.run(args + ["--dump-dom", url], capture_output=True, text=True, timeout=180).stdout


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
        runs = _render(runs_link.replace("http://127.0.0.1:5000", base), tmp_path, shot)
        assert "random_affine-r8-s0-lr0.1" in runs and "full-r1-s0-lr0.01" in runs, runs[-3000:]
        board = _render(board_link.replace("http://127.0.0.1:5000", base), tmp_path)
        assert "leaderboard.md" in board and "accuracy_vs_compression.png" in board, board[-3000:]
    finally:
        server.terminate()
        server.wait(timeout=30)
