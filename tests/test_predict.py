"""`python -m benchmark predict`: the threshold of a linearized network predicted from its curvature at w0,
against the linearized network's measured one, by both routes, from the command line."""
import csv
import math

import pytest

from benchmark.__main__ import main
from benchmark.studies.predict import experiment
from benchmark.studies.predict.experiment import (
    Prediction,
    PredictSettings,
    Threshold,
    agreement,
    attach_real,
    predict,
    slq_products,
)

TINY = ["dataset=digits", "model=fc", "model.width=8", "model.depth=1"]  # D = 610, N·C = 12,940: a floor


def _rows(folder):
    with open(folder / "predict.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_predict_is_within_five_percent_of_D_of_the_measured_linearized_threshold(tmp_path, capsys):
    """Measured here: within 1% of D at every ε; the matrix-free route within 1.5% of D of the exact one."""
    common = [*TINY, "--eps", "0.5", "0.7", "--draws", "12", "--samples", "150",
              "--tracking-uri", f"sqlite:///{tmp_path}/m.db"]
    assert main(["predict", *common, "--drift", "--out", str(tmp_path / "exact")]) == 0
    out = capsys.readouterr().out
    assert "predicted d*90" in out and "| fc |" in out
    rows = _rows(tmp_path / "exact")
    assert [r["kind"] for r in rows] == ["fraction", "fraction", "target90"]
    D = int(rows[0]["D"])
    assert D == 610 and all(r["route"] == "exact" for r in rows)
    assert float(rows[0]["floor"]) > 0  # N·C > D: the linearized net cannot fit the one-hot targets
    for r in rows:
        predicted, measured = float(r["predicted_d"]), float(r["linearized_d"])
        assert 0 < measured < D and abs(predicted - measured) <= 0.05 * D, r
    assert float(rows[0]["predicted_d"]) > float(rows[1]["predicted_d"])  # a lower loss needs more dimensions
    assert float(rows[0]["floor"]) < float(rows[2]["eps"]) < float(rows[0]["initial_loss"])
    assert (tmp_path / "exact" / "predict.png").stat().st_size > 10_000
    # --drift: the real network trained from w0 learns, and leaves w0 (its NTK moves with it)
    drift = rows[2]
    assert float(drift["drift_test_accuracy"]) > 0.8
    assert float(drift["drift_distance"]) > 0.1 and float(drift["drift_ntk_change"]) > 0.1

    assert main(["predict", *common, "--route", "slq", "--out", str(tmp_path / "slq")]) == 0
    for e, s in zip(rows, _rows(tmp_path / "slq")):
        assert s["route"] == "slq" and s["linearized_d"] == ""  # measured only on the exact route
        assert abs(float(s["predicted_d"]) - float(e["predicted_d"])) <= 0.015 * D


def test_a_bad_run_override_or_option_is_one_line(tmp_path, capsys):
    assert main(["predict", "dataset=nope", "--out", str(tmp_path), "--tracking-uri", f"sqlite:///{tmp_path}/m.db"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "dataset/nope" in err and "digits" in err
    assert main(["predict", *TINY, "--eps", "1.5", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--eps [1.5]" in err
    # a missing --compare file is refused before any work, not after it
    assert main(["predict", *TINY, "--compare", "nope.csv", "--out", str(tmp_path / "c"),
                 "--tracking-uri", f"sqlite:///{tmp_path}/m.db"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'nope.csv': no such file" in err and not (tmp_path / "c" / "predict.csv").exists()


def _prediction(model, D, predicted, t=0, se=1.0):
    p = Prediction(model, D, 100, 10, "slq", D, 1.0, 0.1, 1.0, 1.0, 0.9, 0.95, 0.0, t=t)
    p.thresholds.append(Threshold("target90", 0.3, 0.3, predicted, se, math.nan))
    return p


def test_predictions_meet_the_committed_thresholds_they_are_compared_with(tmp_path):
    study = tmp_path / "invariance.csv"
    study.write_text("model,D,method,d,upper_bound\nfc-a,100,random_affine,20,False\nfc-b,200,random_affine,40,False\n"
                     "fc-c,300,random_affine,30,False\nfc-c,300,lottery_subspace,1,True\nfc-a,999,random_affine,5,False\n")
    board = tmp_path / "leaderboard.csv"  # a run's: random affine not reached up to d = 400 / 4 = 100
    board.write_text("method,D,dstar90,dstar90_upper_bound,acc_mean_r4,acc_mean_r16\nrandom_affine,400,,0,0.5,0.4\n")
    preds = [_prediction("fc-a", 100, 50), _prediction("fc-b", 200, 80), _prediction("fc-c", 300, 150),
             _prediction("mlp", 400, 900)]
    attach_real(preds, [str(study), str(board)])
    assert [p.real for p in preds[:3]] == [{"random_affine": 20.0}, {"random_affine": 40.0}, {"random_affine": 30.0}]
    assert preds[3].real == {} and preds[3].real_above == {"random_affine": 100.0}
    a = agreement(preds)
    assert a["models"] == 3 and a["worst_ratio"] == pytest.approx(5.0) and a["median_ratio"] == pytest.approx(2.5)
    assert a["spearman"] == pytest.approx(0.5)  # fc-b and fc-c swap places
    assert a["at_or_above"] == 3
    with pytest.raises(Exception, match="--compare"):
        attach_real(preds, [str(tmp_path / "missing.csv")])


def test_burn_in_predicts_at_w_t_and_is_compared_with_burn_in_affine_at_the_same_t(tmp_path, capsys):
    """--burn-in 0 T: one row per anchor; w_t is the full-space run's weights after T steps, so the quadratic
    (its L(anchor), spectrum) moves, the w0 row is the one predicted without burn-in, bit for bit."""
    common = [*TINY, "--eps", "0.5", "--draws", "10", "--samples", "100", "--tracking-uri", f"sqlite:///{tmp_path}/m.db"]
    assert main(["predict", *common, "--out", str(tmp_path / "w0")]) == 0
    assert main(["predict", *common, "--burn-in", "0", "6", "--drift", "--out", str(tmp_path / "wt")]) == 0
    plain, rows = _rows(tmp_path / "w0"), _rows(tmp_path / "wt")
    assert [(r["t"], r["kind"]) for r in rows] == [("0", "fraction"), ("0", "target90"), ("6", "fraction"), ("6", "target90")]
    for a, b in zip(plain, rows[:2]):
        assert a["predicted_d"] == b["predicted_d"] and a["linearized_d"] == b["linearized_d"]
    w0, wt = rows[1], rows[3]
    assert wt["initial_loss"] != w0["initial_loss"] and wt["lambda_max"] != w0["lambda_max"]
    D = int(wt["D"])
    assert abs(float(wt["predicted_d"]) - float(wt["linearized_d"])) <= 0.05 * D  # the theory holds at any anchor
    # the drift is measured from each row's anchor: w_6 lies on the run, nearer its end than w0
    assert 0 < float(wt["drift_distance"]) < float(w0["drift_distance"])
    # a bad t is one line, before anything is trained
    capsys.readouterr()
    assert main(["predict", *common, "--burn-in", "100000", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--burn-in 100000 exceeds the full-space run" in err and "0 <= t <=" in err
    assert main(["predict", *common, "--burn-in", "4", "4", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--burn-in [4, 4]: distinct step counts" in err


def test_burn_in_predictions_read_a_burnin_study_and_a_runs_leaderboard(tmp_path):
    study = tmp_path / "burnin.csv"  # the burnin study's shape: `value` is t, one row per fraction
    study.write_text("t,value,D,method,fraction,d,upper_bound,at_theta0\n"
                     "t=0,0,100,burn_in_affine,0.9,30,False,False\nt=0,0,100,burn_in_affine,0.5,3,False,False\n"
                     "t=4,4,100,burn_in_affine,0.9,12,False,False\nt=16,16,100,burn_in_affine,0.9,1,True,True\n"
                     "t=4,4,100,random_pruning_t,0.9,500,False,False\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / "leaderboard.csv").write_text("method,D,dstar90,dstar90_upper_bound\nburn_in_affine,200,40,0\n"
                                          "random_affine,200,80,0\n")
    (run / "provenance.json").write_text('{"config": {"burn_in_steps": 8}}')
    preds = [_prediction("m", 100, 50), _prediction("m", 100, 24, t=4), _prediction("m", 100, 0.0, t=16),
             _prediction("n", 200, 100), _prediction("n", 200, 60, t=8), _prediction("n", 200, 60, t=4)]
    attach_real(preds, [str(study), str(run / "leaderboard.csv")])
    assert preds[0].real == {"burn_in_affine": 30.0} and preds[0].real_d90 == ("burn_in_affine", 30.0)
    assert preds[1].real == {"burn_in_affine": 12.0}  # t = 4's row, never random_pruning_t's
    assert preds[2].real == {} and preds[2].real_at_theta0 == {"burn_in_affine"}
    assert preds[3].real_d90 == ("random_affine", 80.0)  # at w0 random affine first
    assert preds[4].real == {"burn_in_affine": 40.0} and preds[5].real == {}  # the run's t is 8
    a = agreement(preds, burn_in=True)  # t > 0 with a positive prediction: m at 4, n at 8
    assert a["models"] == 2 and a["median_ratio"] == pytest.approx((2.0 + 1.5) / 2)
    assert a["theta0_both"] == 1  # m at 16: predicted 0 and the real anchor alone reaches the target
    assert agreement(preds)["models"] == 2


def test_theta0_agreement_allows_the_predictions_monte_carlo_error():
    """'Both say θ = 0' where the real anchor alone reaches the target and the prediction is within two of
    its standard errors of 0 (or below one direction), not where it is clearly positive."""
    preds = [_prediction("m", 100, 9.0, t=16, se=4.6), _prediction("m", 100, 0.5, t=64, se=0.0),
             _prediction("m", 100, 9.0, t=256, se=1.0), _prediction("m", 100, 9.0, t=4, se=4.6)]
    for p in preds[:3]:
        p.real_at_theta0.add("burn_in_affine")
    assert agreement(preds, burn_in=True)["theta0_both"] == 2  # t = 16 and 64; 9 ± 1 is not 0; t = 4's run needs d


def test_the_eps90_cone_is_seeded_by_its_name_not_by_the_computed_level(monkeypatch):
    """ε90 is computed, so its last bits are the machine's rounding: they must not pick the cone's Monte Carlo
    sample (they did, and moved predicted d*90 by its standard error from one CPU to the next)."""
    seeds, real = [], experiment.L.loss_at_accuracy
    monkeypatch.setattr(experiment, "predicted_d", lambda lin, eps, samples, seed: seeds.append((eps, seed)) or (1.0, 0.0))
    s = PredictSettings(eps=(0.5,), measure_max_D=0)
    for scale in (1.0, 1.0 + 1e-12):  # the same ε90 but for its last bits
        monkeypatch.setattr(experiment.L, "loss_at_accuracy", lambda *a, k=scale: (real(*a)[0] * k, *real(*a)[1:]))
        predict(None, TINY, s)
    (f1, s1), (e1, t1), (f2, s2), (e2, t2) = seeds
    assert e1 != e2 and t1 == t2  # ε90 moved, its seed did not
    assert f1 == f2 and s1 == s2 and s1 != t1


def test_the_slq_route_shows_its_jacobian_products_as_progress():
    """One bar per anchor on the slq route, ticked once per product, never past the most it announced."""
    bars = []

    class Bar:
        def __init__(self, label, anchor, most):
            self.label, self.anchor, self.most, self.n = label, anchor, most, 0

        def __enter__(self):
            bars.append(self)
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n=1):
            self.n += n

    s = PredictSettings(eps=(0.5,), burn_in=(0, 3), route="slq", probes=1, steps=12, samples=60)
    predict(None, TINY, s, progress=Bar)
    assert [(b.label, b.anchor) for b in bars] == [("fc", "w0"), ("fc", "t = 3")]
    most = slq_products(s)
    # spectrum: 2 x (1 probe + r0) x 12; flow: 1 + 2 x 12; validation: one jvp per flow coordinate (<= 12)
    assert all(2 * 2 * 12 + 1 + 2 * 12 <= b.n <= most == 2 * 3 * 12 + 1 + 12 for b in bars), [b.n for b in bars]
    exact = PredictSettings(eps=(0.5,), route="exact", samples=60, draws=10, measure_max_D=0)
    predict(None, TINY, exact, progress=Bar)
    assert len(bars) == 2  # the exact route's seconds show no bar
