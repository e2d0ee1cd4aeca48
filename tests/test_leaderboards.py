"""Threshold dimensions, success probabilities and leaderboard files, on runs with known answers."""
import math
import re

import numpy as np
import pytest

from leaderboards import build, to_csv, to_markdown
from leaderboards.threshold import crossing, dstar, format_threshold, success_probability, threshold_training_dimension


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


def _linear_curves(thresholds, ds, target=0.9, slope=0.05):
    """(S, n_d) accuracies linear in log10 d, seed s crossing `target` exactly at thresholds[s]:
    crossing interpolates linearly in log d, so each seed's own d*90 is known exactly."""
    return np.array([[target + slope * math.log10(d / t) for d in ds] for t in thresholds])


def _t_interval_by_hand(values, level=0.95):
    from scipy import stats

    logs = np.log(values)
    half = stats.t.ppf(0.5 + level / 2, len(logs) - 1) * logs.std(ddof=1) / math.sqrt(len(logs))
    return math.exp(logs.mean() - half), math.exp(logs.mean() + half)


def test_dstar_interval_is_exact_without_noise():
    ds = [10.0, 100.0, 1000.0]
    acc = np.array([[0.4, 0.8, 0.95]] * 3)  # identical seeds: no spread
    t = dstar(acc, ds, np.array([1.0, 1.0]), fraction=0.9)
    assert t.target == pytest.approx(0.9)
    assert t.d == pytest.approx(math.exp(math.log(100) + (0.1 / 0.15) * math.log(10)))
    assert t.low == pytest.approx(t.d) and t.high == pytest.approx(t.d)
    assert t.n == 3 and not t.low_open and not t.high_open


def test_dstar_with_three_disagreeing_seeds_is_the_t_interval_of_their_own_thresholds():
    ds = [10.0, 100.0, 1000.0, 10000.0]
    own = [80.0, 120.0, 200.0]
    t = dstar(_linear_curves(own, ds), ds, np.array([1.0]), fraction=0.9)
    assert [lo for lo, _ in t.per_seed] == pytest.approx(own) and [hi for _, hi in t.per_seed] == pytest.approx(own)
    assert t.d == pytest.approx(math.exp(np.mean(np.log(own))))  # the mean curve crosses at the geometric mean
    low, high = _t_interval_by_hand(own)  # df = 2: t = 4.30
    assert t.low == pytest.approx(low) and t.high == pytest.approx(high)
    assert t.high / t.low > 5  # not degenerate: a 3-seed bootstrap often gave [d, d] here
    assert t.n == 3 and not t.low_open and not t.high_open and not t.upper_bound
    assert format_threshold(t, 3) == f"{t.d:,.0f} [{low:,.0f}, {high:,.0f}]"
    assert format_threshold(t, 4).endswith("(n = 3)")  # n shown when it differs from the table's


def test_dstar_clips_to_the_tested_range_with_an_open_bound():
    ds = [10.0, 100.0, 1000.0]
    t = dstar(_linear_curves([12.0, 500.0, 900.0], ds), ds, np.array([1.0]))
    assert _t_interval_by_hand([12.0, 500.0, 900.0])[0] < 10  # the t-bound runs below the tested range
    assert t.low == 10.0 and t.low_open and t.high == 1000.0 and t.high_open
    assert "[≤ 10, ≥ 1,000]" in format_threshold(t)


def test_dstar_with_one_seed_has_no_interval():
    t = dstar(np.array([[0.5, 0.95]]), [10.0, 100.0], np.array([1.0]))
    assert t.n == 1 and t.d is not None and t.low is None and t.high is None
    assert format_threshold(t) == f"{t.d:,.0f} (n = 1, no interval)"
    # A seed whose members all failed has no curve: it leaves n.
    t = dstar(np.array([[0.5, 0.95], [np.nan, np.nan]]), [10.0, 100.0], np.array([1.0]))
    assert t.n == 1 and t.low is None and all(map(math.isnan, t.per_seed[1]))  # (nan, nan): no curve


def test_dstar_reached_at_the_smallest_d_is_an_upper_bound():
    t = dstar(np.array([[0.95, 0.97]]), [10.0, 100.0], np.array([1.0]))
    assert t.d == 10.0 and t.upper_bound
    assert not dstar(np.array([[0.5, 0.97]]), [10.0, 100.0], np.array([1.0])).upper_bound
    # One of three seeds already reaches at the smallest d: its d* may be anything below, so the lower bound opens.
    ds = [10.0, 100.0, 1000.0]
    t = dstar(np.vstack([_linear_curves([20.0, 30.0], ds), [[0.95, 0.96, 0.97]]]), ds, np.array([1.0]))
    assert t.per_seed[2] == (0.0, 10.0)
    high = _t_interval_by_hand([20.0, 30.0, 10.0])[1]  # the edge seed enters at 10, its largest possible d*
    assert t.low == 10.0 and t.low_open and t.high == pytest.approx(high) and not t.high_open
    assert "[≤ 10, " in format_threshold(t)


def test_an_unreached_seed_opens_the_upper_bound():
    ds = [10.0, 100.0, 1000.0]
    acc = np.vstack([_linear_curves([50.0, 55.0], ds), [[0.85, 0.88, 0.89]]])  # seed 2 never reaches 0.9
    t = dstar(acc, ds, np.array([1.0]))
    assert t.per_seed[2] == (1000.0, math.inf)
    assert t.d is not None and t.high is None and t.high_open
    assert t.low == pytest.approx(_t_interval_by_hand([50.0, 55.0])[0])  # from the seeds that reach (df = 1)
    assert not t.low_open
    assert format_threshold(t).endswith(", not reached]")
    nobody = dstar(np.array([[0.2, 0.3], [0.25, 0.3]]), [10.0, 100.0], np.array([0.9]))
    assert nobody.d is None and nobody.low is None and nobody.high is None
    assert format_threshold(nobody) == "not reached"
    # One seed reaches, one does not: the mean misses, and the cell says so.
    t = dstar(np.array([[0.5, 0.95], [0.5, 0.5]]), [10.0, 100.0], np.array([1.0]))
    assert t.d is None and t.high is None and format_threshold(t) == "not reached (1 of 2 seeds reach it)"


def test_paired_threshold_difference_recovers_a_known_factor():
    from leaderboards.paired import factor, paired_log_threshold, verdict

    ds = [10.0, 100.0, 1000.0, 10000.0]
    own_a = np.array([40.0, 60.0, 100.0])
    own_b = own_a * 4 * np.array([1.1, 0.9, 1.0])  # B needs 4x A's d, with seed-to-seed noise
    a = dstar(_linear_curves(own_a, ds), ds, np.array([1.0]))
    b = dstar(_linear_curves(own_b, ds), ds, np.array([1.0]))
    p = paired_log_threshold(np.array(a.per_seed), np.array(b.per_seed))
    diffs = np.log10(own_a / own_b)
    from scipy import stats

    half = stats.t.ppf(0.975, 2) * diffs.std(ddof=1) / math.sqrt(3)
    assert p.n == 3 and p.sided == "two-sided" and p.censored == 0
    assert p.mean == pytest.approx(diffs.mean()) and p.low == pytest.approx(diffs.mean() - half)
    assert p.high == pytest.approx(diffs.mean() + half)
    f, f_low, f_high = factor(p)
    assert f_low < 0.25 < f_high and f == pytest.approx(0.25, rel=0.05)
    assert verdict(p, "A", "B") == "A < B (CI excludes 0)"
    swapped = paired_log_threshold(np.array(b.per_seed), np.array(a.per_seed))
    assert verdict(swapped, "B", "A") == "B > A (CI excludes 0)"


def test_paired_identical_or_mixed_methods_are_not_resolved():
    from leaderboards.paired import paired_log_threshold, verdict

    ds = [10.0, 100.0, 1000.0]
    own = [40.0, 60.0, 100.0]
    same = np.array(dstar(_linear_curves(own, ds), ds, np.array([1.0])).per_seed)
    p = paired_log_threshold(same, same)
    assert p.low <= 0 <= p.high and verdict(p, "A", "B") == "not resolved at n = 3"
    mixed = np.array(dstar(_linear_curves(np.array(own) * [1.3, 0.8, 1.1], ds), ds, np.array([1.0])).per_seed)
    p = paired_log_threshold(same, mixed)
    assert p.low < 0 < p.high and verdict(p, "A", "B") == "not resolved at n = 3"


def test_paired_censored_seeds_make_it_one_sided_or_undetermined():
    from leaderboards.paired import paired_log_threshold, verdict

    a = np.array([[40.0, 40.0], [60.0, 60.0], [50.0, 50.0]])
    b = np.array([[400.0, 400.0], [1000.0, math.inf], [500.0, 500.0]])  # B never reaches on seed 1
    p = paired_log_threshold(a, b)
    assert p.sided == "upper" and p.censored == 1 and p.low == -math.inf
    assert p.mean == pytest.approx(np.mean(np.log10([40 / 400, 60 / 1000, 50 / 500])))  # seed 1 at its bound
    assert verdict(p, "A", "B") == "A < B (one-sided, 1 of 3 seeds censored; CI excludes 0)"
    neither = np.array([[40.0, 40.0], [1000.0, math.inf], [50.0, 50.0]])  # seed 1: neither reaches
    p = paired_log_threshold(neither, b)
    assert p.sided == "undetermined" and math.isnan(p.low) and verdict(p, "A", "B").startswith("undetermined: 1 of 3")
    missing = np.vstack([a, [[np.nan, np.nan]]])  # a seed A has no curve for drops out of the pair
    assert paired_log_threshold(missing, np.vstack([b, [[70.0, 70.0]]])).n == 3


def test_paired_accuracy_difference_per_seed():
    from leaderboards.paired import paired_difference, verdict

    a = np.array([0.80, 0.82, 0.78, np.nan])
    b = np.array([0.70, 0.73, 0.69, 0.75])  # seed 3: A failed, so it leaves the pair
    p = paired_difference(a, b)
    d = np.array([0.10, 0.09, 0.09])
    from scipy import stats

    half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / math.sqrt(3)
    assert p.n == 3 and p.mean == pytest.approx(d.mean()) and p.low == pytest.approx(d.mean() - half)
    assert verdict(p, "A", "B") == "A > B (CI excludes 0)"
    one = paired_difference(a[:1], b[:1])
    assert one.n == 1 and math.isnan(one.low) and verdict(one, "A", "B") == "not resolved at n = 1"


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
    lb = build(_records(), "synthetic", "toy")
    assert [r.method for r in lb.rows] == ["full", "random_affine", "random_pruning"]
    affine = lb.rows[1]
    assert affine.threshold.d == pytest.approx(100.0)  # 0.81 = 90% of 0.9 exactly at d = 100
    assert affine.compression == pytest.approx(10.0)
    assert lb.rows[2].threshold.d is None
    md = to_markdown(lb)
    assert "| 1 | random_affine | 100 [100, 100] | 10.0 |" in md
    assert "random_pruning | not reached" in md
    assert "(1 failed)" in md
    assert "accuracy: mean ± std over n = 3 seeds" in md  # n stated once, not per cell
    csv = to_csv(lb).splitlines()
    assert csv[0].startswith("rank,method,D,dstar90")
    assert (",dstar90_n,dstar90_low_open,dstar90_high_open,dstar90_seeds,acc_n_r1,acc_n_r2,acc_n_r10,acc_n_r100,"
            "reached_at_theta0,") in csv[0]  # new columns only at the end
    assert csv[2].startswith("1,random_affine,1000,100,100,100,0,10,")
    assert ",3,0,0,100;100;100;,,3,3,3,0," in csv[2]  # seed 9 ran only for random_pruning (and failed)
    assert ",3,0,1,>500;>500;>500;,,3,3,3,0," in csv[3]
    # random_pruning never reaches the target: each seed only bounds the comparison, so it is one-sided.
    assert ("| random_affine | random_pruning | ≤ -0.70 [-∞, -0.70] | ≤ ×0.2 [0, 0.2] | 3 | random_affine < "
            "random_pruning (one-sided, 3 of 3 seeds censored; CI excludes 0) |") in md


def test_one_seed_leaderboard_says_n_1_and_shows_no_interval():
    from leaderboards import to_text

    lb = build([r for r in _records() if r["seed"] == 0], "synthetic", "toy")
    text = to_text(lb)
    assert "100 (n = 1, no interval)" in text
    assert "0.880 " in text and "0.880 ±" not in text  # no std from one seed
    assert "a single seed (n = 1)" in text
    assert "not resolved at n = 1 (one-sided, 1 of 1 seeds censored)" in text


def _curve_records(thresholds: dict[str, list[float]], D=10000, ratios=(1000.0, 100.0, 10.0)):
    """Runs of methods whose seed s crosses 90% of a full accuracy of 1.0 exactly at thresholds[m][s]."""
    recs = [dict(method="full", ratio=1.0, d=D, D=D, seed=s, status="FINISHED", test_acc=1.0, train_acc=1.0,
                 prep_steps=0) for s in range(3)]
    for m, own in thresholds.items():
        for ratio in ratios:
            d = round(D / ratio)
            recs += [dict(method=m, ratio=ratio, d=d, D=D, seed=s, status="FINISHED", test_acc=acc[0],
                          train_acc=acc[0], prep_steps=0)
                     for s, acc in enumerate(_linear_curves(own, [d]))]
    return recs


def test_leaderboard_paired_section_resolves_a_known_factor_and_not_noise(tmp_path):
    from leaderboards import to_text
    from leaderboards.write import write

    fast = np.array([15.0, 20.0, 25.0])
    slow = fast * 4 * np.array([1.1, 0.9, 1.0])  # 4x fast's d, seed by seed
    twin = slow * np.array([1.3, 0.8, 1.1])  # slow again, up to seed noise of both signs
    lb = build(_curve_records({"slow": list(slow), "fast": list(fast), "twin": list(twin)}), "synthetic", "toy")
    assert [r.method for r in lb.rows] == ["full", "fast", "slow", "twin"]
    text = to_text(lb)
    assert "Paired comparisons" in text
    assert "fast < slow (CI excludes 0)" in text
    assert "not resolved at n = 3" in text
    folder = tmp_path / "lb"
    assert folder / "paired.csv" in write(lb, folder, formats=("csv",), plots=False)
    rows = (folder / "paired.csv").read_text().splitlines()
    assert rows[0] == ("method_a,method_b,quantity,ratio,n,sided,censored,mean,low,high,factor,factor_low,"
                       "factor_high,verdict")
    fast_slow = next(r.split(",") for r in rows if r.startswith("fast,slow,log10_dstar90"))
    assert float(fast_slow[7]) == pytest.approx(np.mean(np.log10(fast / slow)))
    assert float(fast_slow[11]) < 0.25 < float(fast_slow[12])  # the factor's CI holds the true 1/4
    assert sum(r.startswith("fast,slow,test_acc,") for r in rows) == 3  # accuracy at each D/d, paired too


def test_the_leaderboard_says_whether_its_reference_converged():
    from leaderboards.build import reference_note

    lb = build(_records(), "synthetic", "toy")
    assert lb.full_train_acc == pytest.approx(1.0)
    note = reference_note(lb)
    assert "train accuracy 1.000, test accuracy 0.900 (90% target 0.810); converged" in note
    assert to_markdown(lb).startswith(note)
    weak = [dict(r, train_acc=0.7) if r["method"] == "full" else r for r in _records()]
    note = reference_note(build(weak, "synthetic", "toy"))
    assert "train accuracy 0.700" in note and "NOT CONVERGED" in note
    no_full = [r for r in _records() if r["method"] != "full"]
    assert "no FINISHED `full` run" in reference_note(build(no_full))


def test_leaderboard_from_a_temporary_mlflow_store(tmp_path):
    import subprocess
    import sys

    from mlflow.tracking import MlflowClient

    from benchmark.runner import tracking
    from leaderboards.publish import publish

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
    for name in ("leaderboard.md", "leaderboard.csv", "leaderboard.html", "success_probability.csv", "paired.csv",
                 "accuracy_vs_compression.png", "success_probability.png", "dstar_eps.png"):
        assert (folder / name).stat().st_size > 0, name
    rows = (folder / "leaderboard.csv").read_text().splitlines()
    assert [r.split(",")[1] for r in rows[1:]] == ["full", "random_affine", "random_pruning"]
    assert "random_affine" in proc.stdout and "not reached" in proc.stdout
    # The run verb's own path: artifacts and dstar90 metrics on the parent run.
    from leaderboards.source import records_from_mlflow

    records = records_from_mlflow(parent_run_id=parent, tracking_uri=uri)[("synthetic", "toy")]
    assert len(records) == len(_records())
    publish(client, parent, records, "synthetic", "toy")
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


def test_committed_golden_smoke_leaderboard_covers_every_method_of_the_smoke_preset():
    import csv
    from pathlib import Path

    from benchmark.config.build import build_config
    from benchmark.config.compose import compose

    path = Path(__file__).parents[1] / "leaderboards" / "results" / "smoke" / "leaderboard.csv"
    rows = list(csv.DictReader(path.open()))
    assert {r["method"] for r in rows} == set(build_config(compose(["preset=smoke"])).methods)
    assert all(r["acc_mean_r1"] for r in rows if r["method"] == "full")


def _member(method, ratio, seed, acc, D=1000, **extra):
    return dict(method=method, ratio=ratio, d=round(D / ratio), D=D, seed=seed, lr=0.01, status="FINISHED",
                val_acc=acc, val_loss=1.0, test_acc=acc, train_acc=1.0, **extra)


def test_a_threshold_the_anchor_reaches_alone_is_reported_as_such_and_not_ranked():
    """burn_in-like: w_t alone (θ = 0) already scores above the target; a w0 method reaches it by training."""
    recs = []
    for s in range(3):
        recs.append(_member("full", 1.0, s, 0.95, theta0_test_acc=0.1, family="full", anchor="w0"))
        for ratio in (10.0, 100.0):
            recs.append(_member("anchored", ratio, s, 0.93, theta0_test_acc=0.90, family="general", anchor="wt"))
            recs.append(_member("trained", ratio, s, 0.9 if ratio == 10.0 else 0.5, theta0_test_acc=0.1,
                                family="general", anchor="w0"))
    lb = build(recs)
    rows = {row.method: row for row in lb.rows}
    assert rows["anchored"].at_theta0 and rows["anchored"].compression is None
    assert not rows["trained"].at_theta0 and 10 < rows["trained"].compression < 100
    assert lb.anchors == {"w0": pytest.approx(0.1), "wt": pytest.approx(0.9)}
    md = to_markdown(lb)
    assert re.search(r"\| - \| anchored \| reached at θ = 0 \(w_t alone\) \| - \| 0\.900 \|", md)
    assert re.search(r"\| 1 \| trained \| 77 ", md)
    assert "anchors at θ = 0 (test accuracy, seed mean): w0 alone 0.100, w_t alone 0.900" in md
    assert to_csv(lb).splitlines()[0].split(",").count("reached_at_theta0") == 1


def test_a_partly_random_lottery_basis_is_labelled_in_the_table():
    recs = [_member("full", 1.0, 0, 0.95)]
    for ratio, dims in ((4.0, 180), (40.0, 25)):  # rank 180 < d = 250: partly random; d = 25 all principal
        recs.append(_member("lottery_subspace", ratio, 0, 0.9, principal_dims=float(dims)))
    lb = build(recs)
    row = next(r for r in lb.rows if r.method == "lottery_subspace")
    assert row.principal == {4.0: (180, 180)}
    md = to_markdown(lb)
    assert "0.900 (180 principal + 70 random)" in md
    assert "(25 principal" not in md
    assert "partly a random subspace" in md


def test_a_leaderboard_of_the_reference_alone_still_draws_every_plot(tmp_path):
    """`methods=[full]` once ended in a matplotlib traceback (a 0-row grid of heatmaps)."""
    from leaderboards.plots import write_plots

    lb = build([_member("full", 1.0, s, 0.9) for s in range(2)])
    paths = write_plots(lb, tmp_path)
    assert [p.name for p in paths] == ["accuracy_vs_compression.png", "success_probability.png", "dstar_eps.png"]
    assert all(p.stat().st_size > 1000 for p in paths)


def test_a_method_whose_members_all_failed_and_an_empty_ranking_still_give_every_table_and_plot(tmp_path):
    """Every lottery member over its basis budget once ended in a matplotlib log-scale traceback."""
    from leaderboards.plots import write_plots

    layers = {"layer_shift.0.weight": 0.7, "layer_shift.0.bias": 0.3}
    recs = [_member("full", 1.0, s, 0.9, **layers) for s in range(2)]
    recs += [dict(_member("lottery_subspace", r, s, math.nan), status="FAILED", test_acc=math.nan, val_acc=math.nan)
             for r in (10.0, 100.0) for s in range(2)]
    recs += [_member("random_pruning", r, s, 0.1, **layers, **{"layer_density.0.weight": 0.0,
                                                              "layer_density.0.bias": 1.0 / r})
             for r in (10.0, 100.0) for s in range(2)]
    lb = build(recs)
    assert all(row.compression is None for row in lb.rows if row.method != "full")  # nothing ranked
    assert "lottery_subspace" in to_markdown(lb) and "random_pruning" in to_csv(lb)
    assert lb.layers["layer_density"]["random_pruning"][100.0] == {"0.weight": 0.0, "0.bias": 0.01}
    assert "lottery_subspace" not in lb.layers["layer_shift"]  # FAILED members have no per-layer view
    paths = write_plots(lb, tmp_path)
    assert [p.name for p in paths][-2:] == ["per_layer_density.png", "per_layer_shift.png"]
    assert all(p.stat().st_size > 1000 for p in paths)


def _bits_member(method, ratio, seed, accs: dict, bits: dict, **extra):
    """A member with quantized accuracies {width: (val, test)} and description bits {code: at 32 bits}."""
    d = round(1000 / ratio)
    rec = _member(method, ratio, seed, accs[32][1], **extra)
    rec["val_acc"] = accs[32][0]
    for w, (val, test) in accs.items():
        if w != 32:
            rec[f"val_acc.bits{w}"], rec[f"test_acc.bits{w}"] = val, test
    for code, b32 in bits.items():
        rec[f"description_bits.{code}"] = b32
        for w in accs:
            if w != 32:
                rec[f"description_bits.{code}.bits{w}"] = b32 - d * (32 - w) + 32
    return rec


def test_the_bits_leaderboard_chooses_b_on_validation_and_ranks_each_code_apart():
    from leaderboards.bits import build_bits
    from leaderboards.bits import to_markdown as bits_md

    recs = []
    for s in range(3):
        recs.append(_bits_member("full", 1.0, s, {32: (1.0, 1.0), 8: (1.0, 1.0)},
                                 {"data_free": 32_128, "data_conditional": 32_256}))
        # A mask chosen with data: 4,000 extra bits in the data-free code only. Its d = 100 cell reaches the
        # target on validation at 8 bits (not at 2); its test accuracy at 8 bits is what counts.
        for ratio, acc in ((10.0, 0.95), (100.0, 0.5)):
            d = round(1000 / ratio)
            recs.append(_bits_member("ticket", ratio, s, {32: (acc, acc), 8: (acc, acc - 0.01), 2: (0.2, 0.99)},
                                     {"data_free": d * 32 + 128 + 4000, "data_conditional": d * 32 + 256}))
            recs.append(_bits_member("seeded", ratio, s, {32: (acc, acc), 8: (acc, acc - 0.01), 2: (0.2, 0.2)},
                                     {"data_free": d * 32 + 128, "data_conditional": d * 32 + 256}))
    rows = build_bits(recs)
    by = {code: {r.method: r for r in rs} for code, rs in rows.items()}
    ticket = by["data_free"]["ticket"]
    at = [p for p in ticket.points if p.d == 100][0]
    assert at.width == 8  # validation at 2 bits misses the target (0.2), even though test at 2 bits would pass
    assert at.bits == 100 * 8 + 32 + 128 + 4000 and float(at.acc.mean()) == pytest.approx(0.94)
    # Only the data-free code pays for the mask: the seeded method ranks first there, tied in the other code.
    assert [r.method for r in rows["data_free"]][:2] == ["seeded", "ticket"]
    assert by["data_conditional"]["ticket"].threshold.d == pytest.approx(by["data_conditional"]["seeded"].threshold.d)
    assert by["data_free"]["ticket"].threshold.d - by["data_free"]["seeded"].threshold.d == pytest.approx(4000, rel=0.05)
    md = bits_md(rows)
    assert "### data-free code" in md and "### data-conditional code" in md and "d = 100, b = 8" in md


def test_runs_without_description_bits_have_no_bits_leaderboard():
    from leaderboards.bits import build_bits

    recs = [_member("full", 1.0, 0, 0.9), _member("x", 10.0, 0, 0.9)]
    assert build_bits(recs) == {}
    assert build(recs).bits == {}
