"""The studies along one axis: invariance (d*90 against model size) and burnin (d*(ε) against t)."""
import csv
import io
import math

import pytest

from benchmark.core.errors import UserError
from benchmark.studies.axis import Row, log_slope, to_csv
from benchmark.studies.burnin import cli as burnin_cli
from benchmark.studies.burnin.experiment import falls
from benchmark.studies.burnin.experiment import points as t_points
from benchmark.studies.invariance import cli as invariance_cli
from benchmark.studies.invariance.experiment import points as model_points
from benchmark.studies.invariance.experiment import spreads
from tests.test_verify import _cli


def _row(point, D, d, method="random_affine", value=0.0, upper=False, at_theta0=False, fraction=0.9, low=None,
         high=None):
    return Row(point, value, D, method, fraction, 0.9, 0.81, d, low, high, upper, at_theta0, "w0", 0.1, 3)


def test_model_specs_become_run_overrides_and_bad_ones_are_one_line():
    fc, conv = model_points(["fc:100x2", "conv:8-16-16"])
    assert (fc.value, conv.value) == (0, 1)
    assert fc.label == "fc-100x2" and fc.overrides == ("model=fc", "model.width=100", "model.depth=2")
    assert conv.overrides == ("model=conv2", "model.channels=[8,16,16]")
    with pytest.raises(UserError, match=r"unknown model family 'mlp' in 'mlp:3'; accepted: fc:WIDTHxDEPTH"):
        model_points(["mlp:3"])
    with pytest.raises(UserError, match=r"bad model 'fc:100'; accepted: fc:WIDTHxDEPTH"):
        model_points(["fc:100"])
    with pytest.raises(UserError, match="listed twice"):
        model_points(["fc:10x1", "fc:10x1"])


def test_burn_in_times_are_sorted_points_and_negative_ones_are_refused():
    assert [(p.label, p.value, p.overrides) for p in t_points([16, 0])] == [
        ("t=0", 0, ("burn_in_steps=0",)), ("t=16", 16, ("burn_in_steps=16",))]
    with pytest.raises(UserError, match="burn-in time -4 is negative; accepted: steps t >= 0"):
        t_points([0, -4])


def test_log_slope_recovers_a_power_law():
    b, se = log_slope([1e3, 1e4, 1e5], [5.0 * D**0.5 for D in (1e3, 1e4, 1e5)])
    assert b == pytest.approx(0.5) and se == pytest.approx(0.0, abs=1e-9)


def test_invariance_verdicts_follow_the_slope_and_say_what_was_not_measured():
    flat = [_row(f"m{i}", D, 200 * (1 + 0.05 * i)) for i, D in enumerate((1e3, 1e4, 1e5))]
    grows = [_row(f"m{i}", D, D / 10, "random_pruning") for i, D in enumerate((1e3, 1e4, 1e5))]
    tiny = [_row(f"m{i}", D, 1.0, "lottery_subspace", upper=True) for i, D in enumerate((1e3, 1e4, 1e5))]
    never = [_row(f"m{i}", D, None, "lottery_ticket") for i, D in enumerate((1e3, 1e4, 1e5))]
    by = {s.method: s for s in spreads(flat + grows + tiny + never)}
    assert by["random_affine"].verdict.startswith("yes") and by["random_affine"].spread == pytest.approx(1.1)
    assert by["random_affine"].D_spread == pytest.approx(100)
    assert by["random_pruning"].verdict.startswith("no") and by["random_pruning"].slope == pytest.approx(1.0)
    assert by["lottery_subspace"].verdict == "below this grid's resolution: d*90 ≤ 1 at every size"
    assert by["lottery_ticket"].verdict.startswith("not at this scale")
    assert by["lottery_ticket"].measured == 0 and math.isnan(by["lottery_ticket"].slope)


def test_the_anchors_threshold_is_not_counted_as_the_subspaces_fall():
    rows = [_row("t=0", 1000, 400, "burn_in_affine", 0), _row("t=16", 1000, 100, "burn_in_affine", 16),
            _row("t=64", 1000, 1, "burn_in_affine", 64, upper=True, at_theta0=True)]
    (f,) = falls(rows)
    assert f.last_subspace.value == 16 and f.factor == pytest.approx(4) and f.anchor_from == 64
    assert f.halving == pytest.approx(8)  # 16 steps for two halvings


def test_the_csv_names_the_axis_and_keeps_every_field():
    text = to_csv([_row("fc-10x1", 1000, 250, low=200, high=300)], "model")
    (row,) = csv.DictReader(io.StringIO(text))
    assert row["model"] == "fc-10x1" and float(row["d"]) == 250 and float(row["D_over_d"]) == 4
    assert row["low"] == "200" and row["at_theta0"] == "False"


@pytest.mark.parametrize("main, argv, message", [
    (invariance_cli.main, ["models=[fc:10x1,rnn:3]"], "unknown model family 'rnn'"),
    (invariance_cli.main, ["methods=[full,nonsense]"], "nonsense"),
    (burnin_cli.main, ["t=[0,-1]"], "burn-in time -1 is negative"),
    (burnin_cli.main, ["fractions=[0.5,1.5]"], "target fraction 1.5 is out of range; accepted: 0 < ε <= 1"),
    (burnin_cli.main, ["t=[0,9999]"], "burn_in_steps=9999 exceeds the full-space run"),
])
def test_bad_input_is_one_line_before_any_store(main, argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([*argv, f"tracking.uri=sqlite:///{tmp_path}/m.db", f"out={tmp_path}/out"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "m.db").exists() and not (tmp_path / "out").exists()


TINY = ["seeds=[0,1]", "epochs=1", "ratios=[4]", "set=[dataset.train_size=300,lr_grid=[1],extension.enabled=false]"]


def test_invariance_runs_each_model_under_one_parent_and_verify_regenerates_it(tmp_path):
    out, uri = tmp_path / "inv", f"sqlite:///{tmp_path}/m.db"
    argv = ["invariance", "models=[fc:8x1,fc:32x1]", "methods=[random_affine]", *TINY, f"out={out}",
            f"tracking.uri={uri}"]
    proc = _cli(argv, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = list(csv.DictReader((out / "invariance.csv").open()))
    # digits: 64 inputs, 10 classes: D = 64w + w + 10w + 10
    assert [(r["model"], int(r["D"]), r["method"]) for r in rows] == [
        ("fc-8x1", 610, "random_affine"), ("fc-32x1", 2410, "random_affine")]
    assert all(0.1 < float(r["reference"]) <= 1 for r in rows)
    assert {p.name for p in out.iterdir()} == {"invariance.md", "invariance.csv", "invariance.png", "provenance.json"}

    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("invariance")
    runs = client.search_runs([exp.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("dofbench.kind") == "invariance"]
    jobs = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.info.status == "FINISHED" and sorted(j.info.run_name for j in jobs) == ["fc-32x1", "fc-8x1"]
    members = [r for r in runs if r.data.tags.get("mlflow.parentRunId") in {j.info.run_id for j in jobs}]
    assert len(members) == 2 * (2 + 2)  # per model: full and random_affine, 2 seeds each, one lr
    assert all(m.data.params.get("config_hash") for m in members)

    ok = _cli(["verify", str(out)], tmp_path)
    assert ok.returncode == 0 and "reproduces bit for bit" in ok.stdout, ok.stdout[-1500:] + ok.stderr[-1500:]


def test_burnin_puts_the_anchor_beside_each_t_and_w0_is_the_anchor_at_t0(tmp_path):
    out = tmp_path / "bi"
    argv = ["t=[0,8]", "methods=[burn_in_affine]", "fractions=[0.5,0.9]", *TINY, "epochs=3", f"out={out}",
            f"tracking.uri=sqlite:///{tmp_path}/m.db", "model=fc:16x1"]
    proc = _cli(["burnin", *argv], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = list(csv.DictReader((out / "burnin.csv").open()))
    assert sorted({(r["t"], float(r["fraction"])) for r in rows}) == [("t=0", 0.5), ("t=0", 0.9), ("t=8", 0.5),
                                                                      ("t=8", 0.9)]
    assert {r["anchor"] for r in rows} == {"wt"}
    anchor = {r["t"]: float(r["anchor_acc"]) for r in rows}
    assert anchor["t=8"] > anchor["t=0"]  # eight steps of training move w_t off chance on digits

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path}/m.db")
    runs = client.search_runs([client.get_experiment_by_name("burnin").experiment_id])
    (job,) = [r for r in runs if r.info.run_name == "t=0"]
    w0 = [r.data.metrics["theta0_test_acc"] for r in runs
          if r.data.tags.get("mlflow.parentRunId") == job.info.run_id and r.data.params.get("method") == "full"]
    assert len(w0) == 2 and anchor["t=0"] == pytest.approx(sum(w0) / 2, abs=1e-6)  # at t = 0, w_t is w0
    assert {p.name for p in out.iterdir()} >= {"burnin.md", "burnin.csv", "burnin.png", "burnin_eps.png"}
    assert "w_t alone" in (out / "burnin.md").read_text()
