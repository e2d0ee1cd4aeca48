"""Diverged and degenerate members are published as bad results: every table, plot and leaderboard path
(build, plots, bits, paired, html) takes all-NaN, all-chance, all-FAILED and single-point methods."""
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from leaderboards import build, to_csv, to_markdown, to_text
from leaderboards.bits import to_csv as bits_csv
from leaderboards.bits import to_markdown as bits_markdown
from leaderboards.build import no_result_cells, paired_csv, success_csv, to_html
from leaderboards.plots import write_plots

D = 1000


def _rec(method, ratio, seed, acc, status="FINISHED", reason=None, lr=0.1):
    d = round(D / ratio)
    out = dict(method=method, ratio=ratio, d=d, D=D, seed=seed, lr=lr, status=status, failure_reason=reason,
               test_acc=acc, train_acc=acc, val_acc=acc, val_loss=1.0 if math.isfinite(acc) else math.nan,
               prep_steps=0, theta0_test_acc=0.1, anchor="w0", num_classes=10)
    if status == "FINISHED":  # what a finished member logs for the leaderboard at matched bits
        out.update({"description_bits.data_free": 32.0 * d, "description_bits.data_conditional": 32.0 * d + 10})
    return out


DIVERGED = "training loss became non-finite in epoch 1 (diverged; try a smaller lr)"
KINDS = {  # method records of each degenerate kind, at D/d 4 and 16 over 3 seeds
    "all_failed": lambda m: [_rec(m, r, s, math.nan, "FAILED", "too few directions") for r in (4.0, 16.0)
                             for s in range(3)],
    "all_diverged": lambda m: [_rec(m, r, s, math.nan, "FAILED", DIVERGED) for r in (4.0, 16.0) for s in range(3)],
    "all_nan": lambda m: [_rec(m, r, s, math.nan) for r in (4.0, 16.0) for s in range(3)],
    "all_chance": lambda m: [_rec(m, r, s, 0.1) for r in (4.0, 16.0) for s in range(3)],
    "single_point": lambda m: [_rec(m, 4.0, 0, 0.8)],
}


def _records(kind, with_good):
    recs = [_rec("full", 1.0, s, 0.9) for s in range(3)]
    if with_good:
        recs += [_rec("random_affine", r, s, a) for r, a in ((4.0, 0.85), (16.0, 0.7)) for s in range(3)]
    return recs + KINDS[kind]("random_pruning")


@pytest.fixture(params=[(k, g) for k in KINDS for g in (True, False)], ids=lambda p: f"{p[0]}-{'with' if p[1] else 'alone'}")
def board(request):
    kind, with_good = request.param
    return kind, build(_records(kind, with_good), "synthetic", "toy")


def test_build_and_tables(board):
    kind, lb = board
    bad = next(row for row in lb.rows if row.method == "random_pruning")
    assert bad.threshold.d is None if kind != "single_point" else True
    md, text, csv_text = to_markdown(lb), to_text(lb), to_csv(lb)
    assert "random_pruning" in md and "random_pruning" in text and "random_pruning" in csv_text
    if kind in ("all_nan", "all_diverged"):
        assert "diverged (every lr)" in md
        assert "diverged at every lr (no finite accuracy): random_pruning at D/d 4, 16" in text
        assert no_result_cells(lb)["diverged"] == [("random_pruning", 4.0), ("random_pruning", 16.0)]
    elif kind == "all_failed":
        assert "FAILED (every lr)" in md and "failed at every lr (no finite accuracy): random_pruning" in md
        assert no_result_cells(lb) == {"diverged": [], "failed": [("random_pruning", 4.0), ("random_pruning", 16.0)]}
    else:
        assert no_result_cells(lb) == {"diverged": [], "failed": []} and "no finite accuracy" not in md


def test_paired_success_and_html(board):
    kind, lb = board
    assert paired_csv(lb).startswith("method")
    rows = success_csv(lb).splitlines()
    assert any(r.startswith("random_pruning,") for r in rows[1:])
    html = to_html(lb)
    assert "<table" in html and "random_pruning" in html
    if kind in ("all_nan", "all_diverged"):
        assert "diverged" in html
    assert np.all(np.isnan(lb.seed_acc["random_pruning"][4.0])) == (kind not in ("all_chance", "single_point"))


def test_bits(board):
    kind, lb = board
    assert set(lb.bits) == {"data_free", "data_conditional"}
    pruning = [r for r in lb.bits["data_free"] if r.method == "random_pruning"]
    if kind in ("all_failed", "all_diverged"):  # a FAILED member describes no trained network: it has no bits
        assert pruning == [] and "random_pruning" not in bits_csv(lb.bits)
        return
    assert pruning[0].threshold.d is None or kind == "single_point"  # never reaches 90% of the reference
    assert "random_pruning" in bits_csv(lb.bits) and "random_pruning" in bits_markdown(lb.bits)


def test_plots(board, tmp_path):
    _, lb = board
    paths = write_plots(lb, tmp_path)
    assert {p.name for p in paths} >= {"accuracy_vs_compression.png", "success_probability.png", "dstar_eps.png",
                                        "accuracy_vs_bits.png"}
    assert all(p.stat().st_size > 1000 for p in paths)  # a drawn figure, not an empty file


def test_a_run_whose_every_member_diverges_ends_with_its_leaderboard(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.run([sys.executable, "-m", "benchmark", "run", "preset=smoke", "dataset.train_size=512",
                           "epochs=1", "methods=[full,random_affine]", "subspace_lr=1e9"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert "diverged at every lr (no finite accuracy): random_affine at D/d 8, 64" in proc.stdout
    assert "diverged (every lr)" in proc.stdout and "ranked by D/d*90" in proc.stdout
