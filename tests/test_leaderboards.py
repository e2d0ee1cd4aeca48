"""Threshold dimensions, success probabilities and leaderboard files, on runs with known answers."""
import math
import re

import numpy as np
import pytest

from leaderboards import build, to_csv, to_markdown
from leaderboards.threshold import (
    crossing,
    dstar,
    success_probability,
    threshold_training_dimension,
)


def test_crossing_interpolates_in_log_d():
    # 0.5 at d=10, 0.9 at d=1000: 0.7 is halfway, i.e. at sqrt(10 * 1000) = 100 in log d.
    assert crossing([10, 1000], [0.5, 0.9], 0.7) == pytest.approx(100.0)
    assert crossing([10, 100, 1000], [0.1, 0.2, 0.9], 0.9) == pytest.approx(1000.0)


def test_crossing_at_the_smallest_d_and_not_reached():
    assert crossing([10, 100], [0.95, 0.97], 0.9) == 10.0
    assert crossing([10, 100], [0.5, 0.6], 0.9) is None


def test_non_monotone_curve_uses_the_first_upward_crossing():
    # Reaches 0.8 between d=10 and d=100, dips at 1000, recovers: the threshold stays in [10, 100].
    d = crossing([10, 100, 1000, 10000], [0.6, 1.0, 0.5, 1.0], 0.8)
    assert d == pytest.approx(math.exp(math.log(10) + 0.5 * math.log(10)))


def test_crossing_skips_failed_points():
    assert crossing([10, 100, 1000], [0.9, float("nan"), 0.95], 0.92) == pytest.approx(
        math.exp(math.log(10) + 0.4 * (math.log(1000) - math.log(10))))


def test_dstar_bootstrap_interval_brackets_the_point_and_is_exact_without_noise():
    ds = [10.0, 100.0, 1000.0]
    acc = np.array([[0.4, 0.8, 0.95]] * 3)  # identical seeds: no spread
    t = dstar(acc, ds, np.array([1.0, 1.0]), fraction=0.9)
    assert t.target == pytest.approx(0.9)
    assert t.d == pytest.approx(math.exp(math.log(100) + (0.1 / 0.15) * math.log(10)))
    assert t.low == pytest.approx(t.d) and t.high == pytest.approx(t.d)
    noisy = np.array([[0.4, 0.7, 0.95], [0.4, 0.9, 0.95], [0.4, 0.85, 0.95]])
    t = dstar(noisy, ds, np.array([1.0, 1.0]), fraction=0.9, n_boot=300)
    assert t.low <= t.d <= t.high
    assert t.low < t.high


def test_dstar_reached_at_the_smallest_d_is_an_upper_bound():
    t = dstar(np.array([[0.95, 0.97]]), [10.0, 100.0], np.array([1.0]))
    assert t.d == 10.0 and t.upper_bound
    assert not dstar(np.array([[0.5, 0.97]]), [10.0, 100.0], np.array([1.0])).upper_bound


def test_dstar_not_reached_and_an_open_interval():
    t = dstar(np.array([[0.2, 0.3], [0.25, 0.3]]), [10.0, 100.0], np.array([0.9]))
    assert t.d is None and t.low is None and t.high is None
    # One seed reaches, one does not: the mean misses but some resamples reach.
    t = dstar(np.array([[0.5, 0.95], [0.5, 0.5]]), [10.0, 100.0], np.array([1.0]), n_boot=400)
    reach_with_seed0 = crossing([10.0, 100.0], [0.5, 0.95], 0.9)
    assert t.d is None and t.low == pytest.approx(reach_with_seed0) and t.high is None


def test_success_probability_and_threshold_training_dimension():
    train = np.array([[0.2, 0.6, 0.9], [0.3, 0.5, 0.95], [0.1, 0.7, float("nan")]])  # NaN: a failed member
    ps = success_probability(train, [0.5, 0.8])
    np.testing.assert_allclose(ps, [[0, 1, 2 / 3], [0, 0, 2 / 3]])
    assert threshold_training_dimension(ps, [10, 100, 1000], delta=0.5) == [100, 1000]
    assert threshold_training_dimension(ps, [10, 100, 1000], delta=0.0) == [100, None]


def _records(D=1000):
    """Synthetic runs: general subspaces reach 90% of full at d = 100, pruning never does."""
    recs = []
    for seed in range(3):
        recs.append(dict(method="full", ratio=1.0, d=D, D=D, seed=seed, status="FINISHED",
                         test_acc=0.9, train_acc=1.0, prep_steps=0))
        for ratio, good, bad in [(100.0, 0.5, 0.3), (10.0, 0.81, 0.5), (2.0, 0.88, 0.7)]:
            recs.append(dict(method="random_affine", ratio=ratio, d=round(D / ratio), D=D, seed=seed,
                             status="FINISHED", test_acc=good, train_acc=good + 0.1, prep_steps=0))
            recs.append(dict(method="random_pruning", ratio=ratio, d=round(D / ratio), D=D, seed=seed,
                             status="FINISHED", test_acc=bad, train_acc=bad, prep_steps=0))
    recs.append(dict(method="random_pruning", ratio=100.0, d=10, D=D, seed=9, status="FAILED",
                     test_acc=float("nan"), train_acc=float("nan"), prep_steps=0))
    return recs


def test_leaderboard_ranks_by_compression_and_marks_not_reached():
    lb = build(_records(), "synthetic", "toy", n_boot=100)
    assert [r.method for r in lb.rows] == ["full", "random_affine", "random_pruning"]
    affine = lb.rows[1]
    assert affine.threshold.d == pytest.approx(100.0)  # 0.81 = 90% of 0.9 exactly at d = 100
    assert affine.compression == pytest.approx(10.0)
    assert lb.rows[2].threshold.d is None
    md = to_markdown(lb)
    assert "| 1 | random_affine | 100 [100, 100] | 10.0 |" in md
    assert "random_pruning | not reached" in md
    assert "(1 failed)" in md
    csv = to_csv(lb).splitlines()
    assert csv[0].startswith("rank,method,D,dstar90")
    assert csv[2].startswith("1,random_affine,1000,100,100,100,0,10,")


def test_the_leaderboard_says_whether_its_reference_converged():
    from leaderboards.build import reference_note

    lb = build(_records(), "synthetic", "toy", n_boot=10)
    assert lb.full_train_acc == pytest.approx(1.0)
    note = reference_note(lb)
    assert "train accuracy 1.000, test accuracy 0.900 (90% target 0.810); converged" in note
    assert to_markdown(lb).startswith(note)
    weak = [dict(r, train_acc=0.7) if r["method"] == "full" else r for r in _records()]
    note = reference_note(build(weak, "synthetic", "toy", n_boot=10))
    assert "train accuracy 0.700" in note and "NOT CONVERGED" in note
    no_full = [r for r in _records() if r["method"] != "full"]
    assert "no FINISHED `full` run" in reference_note(build(no_full, n_boot=10))


def test_leaderboard_from_a_temporary_mlflow_store(tmp_path):
    import subprocess
    import sys

    from mlflow.tracking import MlflowClient

    from benchmark import tracking
    from benchmark.run import publish_leaderboard

    uri = f"sqlite:///{tmp_path}/m.db"
    client, exp = tracking.open_store(uri, "synthetic-toy")
    parent = tracking.start_run(client, exp, "sweep")
    for r in _records():
        child = tracking.start_run(client, exp, f"{r['method']}-{r['ratio']}-{r['seed']}", parent_id=parent)
        tracking.log_values(client, child,
                            params={"method": r["method"], "dataset": "synthetic", "model": "toy", "D": r["D"],
                                    "d": r["d"], "ratio": r["ratio"], "seed": r["seed"],
                                    "config_hash": f"{r['method']}{r['ratio']}{r['seed']}"},
                            metrics={"test_acc": r["test_acc"], "train_acc": r["train_acc"], "prep_steps": 0})
        tracking.end_run(client, child, r["status"])
    tracking.end_run(client, parent)
    out = tmp_path / "lb"
    proc = subprocess.run([sys.executable, "-m", "benchmark", "leaderboard", "--run", parent, "--out", str(out),
                           "--tracking-uri", uri], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    folder = out / "synthetic-toy"
    for name in ("leaderboard.md", "leaderboard.csv", "leaderboard.html", "success_probability.csv",
                 "accuracy_vs_compression.png", "success_probability.png", "dstar_eps.png"):
        assert (folder / name).stat().st_size > 0, name
    rows = (folder / "leaderboard.csv").read_text().splitlines()
    assert [r.split(",")[1] for r in rows[1:]] == ["full", "random_affine", "random_pruning"]
    assert "random_affine" in proc.stdout and "not reached" in proc.stdout
    # The run verb's own path: artifacts and dstar90 metrics on the parent run.
    from leaderboards.source import records_from_mlflow

    records = records_from_mlflow(parent_run_id=parent, tracking_uri=uri)[("synthetic", "toy")]
    assert len(records) == len(_records())
    publish_leaderboard(client, parent, records, "synthetic", "toy")
    metrics = MlflowClient(uri).get_run(parent).data.metrics
    assert metrics["dstar90.random_affine"] == pytest.approx(100.0)
    assert "dstar90.random_pruning" not in metrics
    arts = [a.path for a in client.list_artifacts(parent, "leaderboard")]
    assert "leaderboard/accuracy_vs_compression.png" in arts


def test_leaderboard_cli_errors_are_one_line(tmp_path):
    import subprocess
    import sys

    uri = f"sqlite:///{tmp_path}/m.db"
    for args, fragment in [(["--experiment", "nope"], "no experiment named 'nope'"),
                           (["--format", "pdf"], "unknown format 'pdf'; accepted: md, csv, html")]:
        proc = subprocess.run([sys.executable, "-m", "benchmark", "leaderboard", "--tracking-uri", uri, *args],
                              capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 2 and fragment in proc.stderr and "Traceback" not in proc.stderr


def test_golden_comparison_reports_moves_beyond_tolerance_readably():
    from leaderboards.golden import compare

    golden = ("rank,method,D,dstar90,dstar90_upper_bound,prep_steps,acc_mean_r1,acc_mean_r8,acc_std_r8\n"
              "0,full,100,100,0,0,0.5,,\n1,random_affine,100,20,0,0,,0.45,0.01\n2,lottery_ticket,100,40,0,12,,0.40,0\n")
    assert compare(golden, golden) == []
    # Within tolerance (accuracy ± 0.01, d*90 ± 5%), and noisy columns are not compared.
    close = golden.replace("0.45,0.01", "0.455,0.2").replace(",20,", ",20.9,")
    assert compare(golden, close) == []
    moved = golden.replace("0.45,0.01", "0.43,0.01").replace("lottery_ticket,100,40,0,12", "lottery_ticket,100,,0,13")
    diffs = compare(golden, moved)
    assert len(diffs) == 3
    assert any("random_affine" in d and "acc_mean_r8" in d and re.search(r"golden +0.45 +now +0.43", d) for d in diffs)
    assert any("lottery_ticket" in d and "dstar90" in d and "now  not reached" in d for d in diffs)
    assert any("prep_steps" in d and "(tolerance exact)" in d for d in diffs)
    assert compare(golden, golden.replace("2,lottery_ticket,100,40,0,12,,0.40,0\n", "")) == [
        "method lottery_ticket: in the golden leaderboard, missing now"]


def test_committed_golden_smoke_leaderboard_covers_every_method():
    import csv
    from pathlib import Path

    from benchmark.methods import METHODS

    path = Path(__file__).parents[1] / "leaderboards" / "results" / "smoke" / "leaderboard.csv"
    rows = list(csv.DictReader(path.open()))
    assert {r["method"] for r in rows} == set(METHODS)
    assert all(r["acc_mean_r1"] for r in rows if r["method"] == "full")
