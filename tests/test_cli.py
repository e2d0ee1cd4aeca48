"""`python -m benchmark run` end to end, and every bad input's one-line error."""
import io
import os
import re
import subprocess
import sys

import pytest

from benchmark.config.build import build_config
from benchmark.core.errors import UserError

FAST = ["preset=smoke", "dataset.train_size=512", "epochs=1", "burn_in_steps=4"]


def _cli(args, cwd, uri=None, timeout=300):
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    if uri:
        env["MLFLOW_TRACKING_URI"] = uri
    return subprocess.run([sys.executable, "-m", "benchmark", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_smoke_run_end_to_end_logs_one_finished_child_per_member(tmp_path):
    from mlflow.tracking import MlflowClient

    proc = _cli(["run", *FAST], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "mlflow ui --backend-store-uri sqlite:///mlflow.db" in proc.stdout
    assert re.search(r"^\d+\s+lottery_subspace\s", proc.stdout, re.M)  # a ranked row of the leaderboard
    assert "ranked by D/d*90" in proc.stdout
    # MLflow's default store in the working directory, experiment <dataset>-<model>.
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("mnist1d-mlp")
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"  # MLflow 3's "Model training" view
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    # smoke: 1 seed; full at ratio 1, every other method of the preset at ratios 8 and 64; 3 candidate lrs each.
    others = len(build_config(_raw(FAST)).methods) - 1
    assert others >= 15
    assert len(children) == 3 * (1 + others * 2)
    assert all(r.info.status == "FINISHED" for r in children)
    # Exactly one selected candidate per (method, ratio), the one with the best final val_acc.
    cells = {}
    for r in children:
        cells.setdefault((r.data.params["method"], r.data.params["ratio"]), []).append(r)
    assert len(cells) == 1 + others * 2
    for runs_of_cell in cells.values():
        assert sorted(float(r.data.params["lr"]) for r in runs_of_cell) == sorted(
            {float(r.data.params["lr"]) for r in runs_of_cell}) and len(runs_of_cell) == 3
        chosen = [r for r in runs_of_cell if r.data.tags["selected"] == "true"]
        assert len(chosen) == 1
        assert chosen[0].data.metrics["val_acc"] == max(r.data.metrics["val_acc"] for r in runs_of_cell)
    assert "reference: full network, lr" in proc.stdout and "chosen on validation" in proc.stdout
    assert "learning rate selected on validation per cell" in proc.stdout
    assert re.search(r"wall time [\d.]+s: reference selection [\d.]+s, preparation [\d.]+s \(full run", proc.stdout)
    D = int(parents[0].data.params["D"])
    by_ratio = {}
    for r in children:
        p, m = r.data.params, r.data.metrics
        for key in ("method", "dataset", "model", "D", "d", "ratio", "seed", "burn_in_steps", "projection",
                    "optimizer", "lr", "epochs", "config_hash"):
            assert key in p, key
        for key in ("test_acc", "test_loss", "val_acc", "train_acc", "train_loss", "wall_time_s", "steps",
                    "prep_steps", "D", "d", "ratio"):
            assert key in m, key
        shares = [v for k, v in m.items() if k.startswith("layer_shift.")]
        # The MLP's 6 tensors share ‖w − b‖² (none for a member that did not move: magnitude at init at
        # D/d = 64 cuts every path after one epoch here, so every gradient is 0).
        assert (len(shares) == 6 and abs(sum(shares) - 1) < 1e-6) or (not shares and m["train_acc"] < 0.2)
        density = {k: v for k, v in m.items() if k.startswith("layer_density.")}
        assert bool(density) == (p["family"] == "pruning")
        assert 0.0 <= m["test_acc"] <= 1.0
        by_ratio.setdefault(float(p["ratio"]), set()).add(int(p["d"]))
    # Matched compression: every method at a ratio has the same d = round(D / r).
    assert by_ratio == {1.0: {D}, 8.0: {round(D / 8)}, 64.0: {round(D / 64)}}
    assert {r.data.params["reference_lr"] for r in children if r.data.params["method"] == "lottery_ticket"} == {
        parents[0].data.params["reference_lr"]}
    assert len({r.data.params["config_hash"] for r in children}) == len(children)
    history = client.get_metric_history(children[0].info.run_id, "val_acc")
    assert [h.step for h in history] == [1]
    parent_id = parents[0].info.run_id
    assert f"http://127.0.0.1:5000/#/experiments/{exp.experiment_id}?workflowType=machine_learning" in proc.stdout
    assert (f"http://127.0.0.1:5000/#/experiments/{exp.experiment_id}/runs/{parent_id}/artifacts/leaderboard/"
            f"leaderboard.md?workflowType=machine_learning") in proc.stdout
    assert "config.json" in [a.path for a in client.list_artifacts(parent_id)]
    board = [a.path for a in client.list_artifacts(parent_id, "leaderboard")]
    for name in ("leaderboard.md", "leaderboard.csv", "accuracy_vs_compression.png", "per_layer_density.png",
                 "per_layer_shift.png"):
        assert f"leaderboard/{name}" in board
    assert any(k.startswith("dstar90.") for k in parents[0].data.metrics) or "not reached" in proc.stdout


def test_same_config_twice_gives_identical_metrics(tmp_path):
    from benchmark.runner.run import run

    raw = _raw(["methods=[full,random_affine,lottery_ticket]", "ratios=[1,16]", "seeds=[0]", "epochs=1",
                "dataset.train_size=256", "burn_in_steps=2", "lr_grid=[0.5,1]"])
    outs = []
    for i in range(2):
        cfg = build_config(dict(raw, tracking={"uri": f"sqlite:///{tmp_path}/s{i}.db", "experiment": None}))
        outs.append({o.cell.name: {k: v for k, v in o.metrics.items() if k != "wall_time_s"}
                     for o in run(cfg, out=open(os.devnull, "w"))["outcomes"]})
    assert outs[0] == outs[1]


def test_reproduce_replays_a_member_exactly_and_fails_loudly_when_numbers_differ(tmp_path, monkeypatch, capsys):
    from mlflow.tracking import MlflowClient

    from benchmark.__main__ import main
    from benchmark.runner.run import run

    uri = f"sqlite:///{tmp_path}/m.db"
    # The smoke preset, two seeds so the preparation is a batch, fewer methods and examples for time.
    raw = _raw(["preset=smoke", "methods=[full,random_affine,lottery_subspace]", "ratios=[1,64]", "seeds=[0,1]",
                "epochs=1", "dataset.train_size=256", "burn_in_steps=2", "lr_grid=[0.5,1]"])
    result = run(build_config(dict(raw, tracking={"uri": uri, "experiment": None})), out=open(os.devnull, "w"))
    member = next(o for o in result["outcomes"] if o.cell.name.startswith("lottery_subspace-r64-s1-lr"))
    client = MlflowClient(uri)
    child = client.search_runs([client.get_experiment_by_name("mnist1d-mlp").experiment_id],
                               filter_string=f"attributes.run_name = '{member.cell.name}'")[0].info.run_id
    # With the preparation cache emptied, it is recomputed in the original batch of seeds [0, 1].
    monkeypatch.setenv("DOFBENCH_CACHE", str(tmp_path / "empty-cache"))
    capsys.readouterr()
    assert main(["reproduce", child, "--tracking-uri", uri]) == 0
    out = capsys.readouterr().out
    assert "reproduced (exactly; preparation recomputed)" in out
    assert re.search(rf"test_acc\s+{member.metrics['test_acc']!r}\s+{member.metrics['test_acc']!r}\s+0\s+ok", out)
    # A logged number that the code does not give back is reported, with exit 1.
    client.log_metric(child, "test_acc", 0.123, step=99)
    assert main(["reproduce", child, "--tracking-uri", uri]) == 1
    out = capsys.readouterr().out
    assert "NOT reproduced" in out and re.search(r"test_acc\s+0\.123\s+\S+\s+\S+\s+DIFFERS", out)
    assert main(["reproduce", child, "--tracking-uri", uri, "--rtol", "10"]) == 0
    # Not a member run, or no run at all: one line, exit 2.
    capsys.readouterr()
    assert main(["reproduce", result["parent_run_id"], "--tracking-uri", uri]) == 2
    assert "is not a dofbench member run" in capsys.readouterr().err
    assert main(["reproduce", "0123abc", "--tracking-uri", uri]) == 2
    assert "no run '0123abc' in this tracking store" in capsys.readouterr().err


def _raw(overrides):
    from benchmark.config.compose import compose

    return compose(overrides)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["methods=[random_affine,foo]"], "unknown method 'foo'; accepted: all, burn_in_affine"),
        (["methods=[]"], "methods is empty; give at least one"),
        (["ratios=[1,abc]"], "ratio must be a number, got 'abc'"),
        (["ratios=[0.5]"], "ratio must be >= 1"),
        (["epochs=0"], "epochs must be > 0, got 0"),
        (["epochs=-3"], "epochs must be > 0"),
        (["lr=0"], "lr must be > 0, got 0"),
        (["lr=-1e-3"], "lr must be > 0"),
        (["subspace_lr=0"], "subspace_lr must be > 0"),
        (["lr_grid=[]"], "lr_grid is empty; accepted: a non-empty list of positive factors"),
        (["lr_grid=[1,0]"], "lr_grid entry 0 is not positive; accepted:"),
        (["lr_grid=[1,-3]"], "lr_grid entry -3 is not positive"),
        (["lr_grid=[1,fast]"], "lr_grid entry 'fast' is not a number; accepted:"),
        (["optimizer=lion"], "unknown optimizer 'lion'; accepted: adam, sgd"),
        (["subspace_optimizer=lion"], "unknown subspace_optimizer 'lion'; accepted: adam, sgd"),
        (["extension.max_dims=0"], "extension.max_dims must be >= 1"),
        (["imp.fraction=1.5"], "imp.fraction must be in (0, 1)"),
        (["device=tpu"], "unknown device 'tpu'; accepted: auto, cpu, cuda"),
        (["quantize_bits=[8,1]"], "quantize_bits entry 1 is out of range; accepted: a list of whole numbers from 2"),
        (["quantize_bits=[8,x]"], "quantize_bits entry must be a number, got 'x'"),
    ],
)
def test_bad_values_name_the_value_and_what_is_accepted(overrides, message):
    with pytest.raises(UserError) as e:
        build_config(_raw(overrides))
    assert message in str(e.value)


def _assert_clean_error(proc, *fragments):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    for f in fragments:
        assert f in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["run", "dataset=foo"], ["dataset/foo", "digits", "mnist1d"]),
        (["run", "model=foo"], ["model/foo", "cnn1d", "mlp"]),
        (["run", "nonsense_key=1"], ["nonsense_key"]),
        (["run", "ratios=[1,"], ["no viable alternative at input '[1,'"]),  # a malformed override
        (["run", "methods=[bogus]"], ["error: unknown method 'bogus'; accepted:"]),
        (["run", "methods=[]"], ["error: methods is empty"]),
        (["run", "preset=smoke", "imp.prunable=weights", "ratios=[1,8,1000]"],
         ["error: ratio 1000 gives d = 15 for the pruning methods, below the 210 biases"]),
        (["list", "extra"], ["error: list takes no arguments"]),
        # every verb: bad settings are one line (exit 2), never a traceback
        (["bench", "--kind", "bogus"], ["error: unknown bench kind 'bogus'; accepted:"]),
        (["theory", "--bogus"], ["unrecognized arguments: --bogus"]),
        (["leaderboard", "--format", "pdf"], ["error: unknown format 'pdf'; accepted: md, csv, html"]),
        (["golden", "--golden", "/nonexistent"], ["error: no golden leaderboard at /nonexistent"]),
        (["reproduce", "nope"], ["error: no run 'nope' in this tracking store"]),
        (["run", "lr_grid=[0.3,abc]"], ["error: lr_grid entry 'abc' is not a number"]),
        (["run", "ratios=[4,100000]"], ["error: ratio 100000 gives d = 0", "accepted ratios give 1 <= d < D"]),
        (["run", "preset=smoke", "burn_in_steps=100000"], ["error: burn_in_steps=100000 exceeds the full-space run"]),
        (["frobnicate"], ["unknown verb 'frobnicate'"]),
    ],
)
def test_cli_bad_input_is_one_clear_line_and_nothing_looks_finished(tmp_path, args, fragments):
    uri = f"sqlite:///{tmp_path}/m.db"
    proc = _cli(args, tmp_path, uri=uri)
    _assert_clean_error(proc, *fragments)
    if os.path.exists(tmp_path / "m.db"):
        from mlflow.tracking import MlflowClient

        client = MlflowClient(uri)
        exps = [e.experiment_id for e in client.search_experiments()]
        assert not [r for r in client.search_runs(exps) if r.info.status == "FINISHED"]


def test_unreachable_tracking_uri_fails_before_any_training(tmp_path):
    proc = _cli(["run", *FAST, "tracking.uri=http://127.0.0.1:9"], tmp_path, timeout=120)
    _assert_clean_error(proc, "cannot use tracking store 'http://127.0.0.1:9'", "MLFLOW_TRACKING_URI")
    assert "training" not in proc.stdout


def test_unwritable_store_location_fails_clearly(tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    proc = _cli(["run", *FAST, f"tracking.uri=sqlite:///{tmp_path}/a_file/m.db"], tmp_path)
    _assert_clean_error(proc, "cannot use tracking store")


def test_read_only_store_fails_before_any_training(tmp_path):
    from benchmark.runner import tracking

    tracking.open_store(f"sqlite:///{tmp_path}/m.db", "mnist1d-mlp")  # exists, so opening it only reads
    proc = _cli(["run", *FAST, f"tracking.uri='sqlite:///file:{tmp_path}/m.db?mode=ro&uri=true'"], tmp_path)
    _assert_clean_error(proc, "failed in create_run: attempt to write a readonly database",
                        "restore write access")
    assert "preparation done" not in proc.stdout and proc.returncode == 2


@pytest.mark.slow
def test_sigterm_mid_sweep_keeps_finished_members_and_the_rerun_completes_the_rest(tmp_path):
    """population=false logs each member as it finishes; SIGTERM closes the parent as KILLED."""
    import signal
    import time

    from benchmark.runner import tracking

    uri = f"sqlite:///{tmp_path}/m.db"
    args = ["run", "methods=[full,random_affine,random_pruning]", "ratios=[1,4,16,64]", "seeds=[0,1]",
            "epochs=3", "population=false", "dataset.train_size=1024", "lr_grid=[1]", "extension.enabled=false"]
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri)
    # The store exists before the job starts, so this process's polling never races its migrations.
    client, _ = tracking.open_store(uri, "mnist1d-mlp")
    proc = subprocess.Popen([sys.executable, "-m", "benchmark", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    exp = client.get_experiment_by_name("mnist1d-mlp")
    deadline = time.time() + 240
    while time.time() < deadline:  # polled often: on a quiet machine members finish several per second
        time.sleep(0.1)
        runs = client.search_runs([exp.experiment_id])
        if len([r for r in runs if r.info.status == "FINISHED" and "mlflow.parentRunId" in r.data.tags]) >= 2:
            break
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "Traceback" not in err
    runs = client.search_runs([exp.experiment_id])
    parent = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    done = [r for r in runs if "mlflow.parentRunId" in r.data.tags and r.info.status == "FINISHED"]
    assert [p.info.status for p in parent] == ["KILLED"]
    members = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    killed = [r for r in members if r.info.status == "KILLED"]
    # The member in flight is KILLED (named, with its params); none is left looking RUNNING.
    assert {r.info.status for r in members} <= {"FINISHED", "KILLED"} and len(killed) <= 1
    assert all("config_hash" in r.data.params for r in killed)
    total = 2 * (1 + 2 * 3)
    assert 2 <= len(done) < total
    rerun = _cli(args, tmp_path, uri=uri)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"{total - len(done)} members trained ({len(done)} reused)" in rerun.stdout
    runs = client.search_runs([exp.experiment_id])
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags and r.info.status == "FINISHED"]
    assert len(children) == total  # exactly the missing ones were added


@pytest.mark.parametrize("nth_statement", [20, 80, 130])
def test_an_interrupt_inside_a_store_write_waits_for_it_and_the_store_stays_usable(tmp_path, monkeypatch,
                                                                                   nth_statement):
    """The CI failure this guards: SIGTERM landed inside an MLflow call, a SQLite transaction stayed
    open, and the KILLED bookkeeping died with "database is locked". Here the signal is raised right
    after the n-th SQL statement the run sends (20: creating the parent; 80 reproduced the lock before
    the fix; 130: a member's logging), inside SQLAlchemy."""
    import signal

    from sqlalchemy.engine import Connection

    from benchmark.runner import interrupts, tracking
    from benchmark.runner.run import run

    uri = f"sqlite:///{tmp_path}/m.db"
    cfg = build_config(dict(_raw(["preset=smoke", "methods=[full,random_affine]", "ratios=[1,8,64]",
                                  "population=false", "epochs=1", "dataset.train_size=256", "lr_grid=[1]", "extension.enabled=false"]),
                            tracking={"uri": uri, "experiment": None}))
    client, exp_id = tracking.open_store(uri, "mnist1d-mlp")
    real_execute, statements = Connection.execute, []

    def execute_then_signal(self, *args, **kwargs):
        result = real_execute(self, *args, **kwargs)
        statements.append(1)
        if len(statements) == nth_statement:
            signal.raise_signal(signal.SIGTERM)
        return result

    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    interrupts.install()
    monkeypatch.setattr(Connection, "execute", execute_then_signal)
    try:
        with pytest.raises(KeyboardInterrupt):
            run(cfg, out=open(os.devnull, "w"))
    finally:
        monkeypatch.undo()
        for s, h in saved.items():
            signal.signal(s, h)
    runs = client.search_runs([exp_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    members = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert [p.info.status for p in parents] == ["KILLED"]
    assert {r.info.status for r in members} <= {"FINISHED", "KILLED"}
    client.set_tag(parents[0].info.run_id, "after", "the store still takes writes")


def test_a_full_disk_mid_run_is_one_clear_error_and_the_rerun_resumes(tmp_path):
    """SQLite's own disk-full error (SQLITE_FULL, via max_page_count on every pooled connection) hits
    the store part-way through: the run stops with one line, shows what it computed, keeps what was
    logged; with room again, the same command reuses those members and completes the rest."""
    import io
    import sqlite3

    from mlflow.tracking import MlflowClient
    from sqlalchemy import event
    from sqlalchemy.pool import Pool

    from benchmark.runner import tracking
    from benchmark.runner.run import run

    db = tmp_path / "m.db"
    uri = f"sqlite:///{db}"
    cfg = build_config(dict(_raw(["preset=smoke", "methods=[full,random_affine,random_pruning]",
                                  "population=false", "epochs=2", "dataset.train_size=256", "lr_grid=[1]", "extension.enabled=false"]),
                            tracking={"uri": uri, "experiment": None}))
    client, exp_id = tracking.open_store(uri, "mnist1d-mlp")
    pages = sqlite3.connect(db).execute("PRAGMA page_count").fetchone()[0]  # the whole run adds ~10
    room = {"pages": pages + 4}

    def disk(dbapi_connection, record, proxy):
        dbapi_connection.execute(f"PRAGMA max_page_count = {room['pages']}")

    event.listen(Pool, "checkout", disk)
    try:
        out = io.StringIO()
        with pytest.raises(tracking.StoreFailure) as failure:
            run(cfg, out=out)
        message = str(failure.value)
        assert "database or disk is full" in message and uri in message and "re-run the same command" in message
        assert "\n" not in message
        assert "Leaderboard of everything computed" in out.getvalue()
        kept = [r for r in MlflowClient(uri).search_runs([exp_id])
                if "mlflow.parentRunId" in r.data.tags and r.info.status == "FINISHED"]
        total = 1 + 2 * 2
        assert 1 <= len(kept) < total  # the failure came part-way
        assert f"The {len(kept)} member(s) already in the store" in message

        room["pages"] = 2**30  # space freed
        out = io.StringIO()
        result = run(cfg, out=out)
        assert len(result["reused"]) == len(kept) and "already FINISHED" in out.getvalue()
        assert len(result["outcomes"]) == total - len(kept)
    finally:
        event.remove(Pool, "checkout", disk)


def test_an_unbracketed_threshold_gets_one_capped_extension_wave_that_reproduces(tmp_path, monkeypatch, capsys):
    """One ratio cannot bracket a threshold: the wave adds max_dims d (down to 1 or up to D) for that
    method, at every candidate lr, logged under the same parent; `reproduce` replays its members."""
    from mlflow.tracking import MlflowClient

    from benchmark.__main__ import main
    from benchmark.runner.run import run

    uri = f"sqlite:///{tmp_path}/m.db"
    # A cache of its own: a preparation cached by another test (another batch of seeds) would differ in
    # float rounding from the one `reproduce` recomputes.
    monkeypatch.setenv("DOFBENCH_CACHE", str(tmp_path / "cache"))
    raw = _raw(["preset=smoke", "methods=[full,lottery_subspace]", "ratios=[1,64]", "seeds=[0]", "epochs=1",
                "dataset.train_size=256", "burn_in_steps=2", "lr_grid=[0.5,1]", "extension.enabled=true",
                "extension.max_dims=2", "model.hidden=[16]"])
    buf = io.StringIO()
    result = run(build_config(dict(raw, tracking={"uri": uri, "experiment": None})), out=buf)
    assert "extension wave (thresholds not bracketed by the ratios): lottery_subspace + d = " in buf.getvalue()
    D = result["leaderboard"].D
    wave = [o.cell for o in result["outcomes"] if o.cell.method == "lottery_subspace" and o.cell.ratio != 64.0]
    assert len(wave) == 2 * 2 and len({c.d for c in wave}) == 2  # 2 new d x 2 candidate lrs
    assert all(c.d != round(D / 64) and 1 <= c.d < D for c in wave)
    assert all(o.status == "FINISHED" for o in result["outcomes"])
    ratios = {row.method: sorted(row.acc) for row in result["leaderboard"].rows}
    assert len(ratios["lottery_subspace"]) == 3
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("mnist1d-mlp").experiment_id
    child = client.search_runs([exp], filter_string=f"attributes.run_name = '{wave[0].name}'")[0].info.run_id
    monkeypatch.setenv("DOFBENCH_CACHE", str(tmp_path / "empty-cache"))
    capsys.readouterr()
    assert main(["reproduce", child, "--tracking-uri", uri]) == 0
    assert "reproduced (exactly" in capsys.readouterr().out


def test_an_older_config_json_loads_with_defaults_and_a_foreign_one_is_one_clear_error():
    from benchmark.config.build import RunConfig

    cfg = build_config(_raw(["preset=smoke"]))
    old = cfg.to_dict()
    for key in ("lr_grid", "subspace_optimizer", "extension", "memory_budget_mb", "force"):
        old.pop(key)  # fields added after an older version wrote its config.json
    again = RunConfig.from_dict(old)
    assert again.lr_grid == (1.0,) and again.subspace_optimizer == cfg.train.optimizer  # what that version did
    assert not again.extension.enabled and again.memory_budget_mb is None and again.force is False
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(UserError, match="cannot be read by this version of dofbench: .*warmup"):
        RunConfig.from_dict({**cfg.to_dict(), "train": {**cfg.to_dict()["train"], "warmup": 5}})


def test_every_key_is_defined_once_in_the_schema_and_listed():
    """The YAML chooses config groups only; every key, default and help text is the schema's."""
    import yaml

    from benchmark.config.compose import CONF_DIR
    from benchmark.core import schema

    conf = yaml.safe_load((CONF_DIR / "config.yaml").read_text())
    assert set(conf) == {"defaults", "hydra"}
    flat = lambda d, p="": [k for key, v in d.items() for k in (flat(v, f"{p}{key}.") if isinstance(v, dict)
                                                                   and key not in ("dataset", "model")
                                                                   else [f"{p}{key}"])]
    assert set(flat(_raw([]))) == {k for k, _, _ in schema.keys()}
    assert all(h for _, _, h in schema.keys())
    listed = subprocess.run([sys.executable, "-m", "benchmark", "list"], capture_output=True, text=True).stdout
    assert all(f"  {k} = " in listed for k, _, _ in schema.keys())
    from benchmark.training.loop import TrainConfig

    assert TrainConfig().epochs == schema.Schema().epochs == _raw([])["epochs"] == 30


@pytest.mark.slow
def test_sigkill_mid_population_the_rerun_marks_what_was_left_running_and_matches_an_unkilled_run(tmp_path):
    """SIGKILL cannot be caught: the killed invocation leaves its parent and its population RUNNING. The
    next invocation with the same config marks them KILLED (with the reason), trains them again and says
    so; its leaderboard is the one an unkilled run writes."""
    import signal
    import time

    from benchmark.runner import tracking

    args = ["run", "methods=[full,random_affine,random_pruning]", "ratios=[4,16]", "seeds=[0,1]", "epochs=4",
            "dataset.train_size=1024", "lr_grid=[1]", "extension.enabled=false", "quantize_bits=[]"]
    member = lambda r: "mlflow.parentRunId" in r.data.tags
    # A population lasts about a second: the kill may land just after it finished, before the next one
    # started (nothing RUNNING to mark). Such a try tests nothing, so it is made again in a fresh store.
    for attempt in range(4):
        tmp_path = tmp_path.parent / f"{tmp_path.name}-{attempt}" if attempt else tmp_path
        tmp_path.mkdir(exist_ok=True)
        uri = f"sqlite:///{tmp_path}/m.db"
        client, _ = tracking.open_store(uri, "mnist1d-mlp")
        proc = subprocess.Popen([sys.executable, "-m", "benchmark", *args], cwd=tmp_path,
                                env=dict(os.environ, MLFLOW_TRACKING_URI=uri),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        exp = client.get_experiment_by_name("mnist1d-mlp").experiment_id
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
            status = {r.info.status for r in client.search_runs([exp]) if member(r)}
            if {"FINISHED", "RUNNING"} <= status:  # the reference is done, the next population in flight
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        left = [r for r in client.search_runs([exp]) if r.info.status == "RUNNING"]
        if any(member(r) for r in left):
            break
    assert proc.returncode == -signal.SIGKILL and len([r for r in left if member(r)]) >= 1 and len(left) >= 2
    finished = [r for r in client.search_runs([exp]) if member(r) and r.info.status == "FINISHED"]

    rerun = _cli([*args, f"out={tmp_path}/rerun"], tmp_path, uri=uri)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    n = len([r for r in left if member(r)])
    assert f"{n} member(s) of this config were left RUNNING by an invocation that did not end" in rerun.stdout
    assert f"({len(finished)} reused)" in rerun.stdout and finished
    after = {r.info.run_id: r for r in client.search_runs([exp])}
    assert not [r for r in after.values() if r.info.status == "RUNNING"]
    for r in left:  # the members and their parent, each with the reason
        assert after[r.info.run_id].info.status == "KILLED"
        assert "trained again under" in after[r.info.run_id].data.tags["dofbench.killed_reason"]

    clean = _cli([*args, f"out={tmp_path}/clean"], tmp_path, uri=f"sqlite:///{tmp_path}/clean.db")
    assert clean.returncode == 0, clean.stderr[-2000:]
    for name in ("leaderboard.csv", "findings.json"):
        assert (tmp_path / "rerun" / name).read_text() == (tmp_path / "clean" / name).read_text(), name
