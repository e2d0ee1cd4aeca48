"""Published results regenerate: provenance.json, findings.json, `verify` and its two tolerances."""
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.core import determinism
from benchmark.runner import provenance
from leaderboards.compare import Band, compare_csv, compare_findings

FAST = ["preset=smoke", "dataset.train_size=512", "epochs=1", "burn_in_steps=4",
        "methods=[full,random_affine,lottery_ticket]"]


def _cli(args, cwd, **env):
    full = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"} | env
    return subprocess.run([sys.executable, "-m", "benchmark", *args], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=600)


LB = ("rank,method,D,dstar90,dstar90_low,dstar90_high,acc_mean_r1,acc_mean_r4,acc_mean_r16,lr_r4\n"
      "-,full,1000,1000,,,0.900,,,\n"
      "1,random_affine,1000,{d},,,,{a4},0.500,0.1\n")


def test_identity_flags_every_changed_cell():
    old = LB.format(d=100, a4="0.850")
    assert compare_csv("leaderboard.csv", old, old, None) == []
    moved = compare_csv("leaderboard.csv", old, LB.format(d=100, a4="0.851"), None)
    assert [(m.row, m.column, m.old, m.new, m.ok) for m in moved] == [("random_affine", "acc_mean_r4", "0.850",
                                                                        "0.851", False)]


def test_the_band_judges_accuracies_absolutely_and_thresholds_by_a_factor():
    band = Band(acc=0.02, dstar=1.5)
    old = LB.format(d=100, a4="0.850")
    within = compare_csv("leaderboard.csv", old, LB.format(d=140, a4="0.865"), band)
    assert {m.column: m.ok for m in within} == {"dstar90": True, "acc_mean_r4": True}
    outside = compare_csv("leaderboard.csv", old, LB.format(d=160, a4="0.880"), band)
    assert {m.column: m.ok for m in outside} == {"dstar90": False, "acc_mean_r4": False}
    assert next(m for m in outside if m.column == "dstar90").change == "× 1.6"


def test_a_threshold_that_is_not_reached_counts_as_beyond_the_largest_tested_d():
    band = Band(acc=0.02, dstar=1.5)
    old = LB.format(d="", a4="0.850")  # largest tested d: D / 4 = 250
    assert all(m.ok for m in compare_csv("leaderboard.csv", old, LB.format(d=200, a4="0.850"), band))
    assert not any(m.ok for m in compare_csv("leaderboard.csv", old, LB.format(d=100, a4="0.850"), band))


def test_not_reached_is_within_the_band_only_where_the_committed_interval_was_open_above():
    band = Band(acc=0.02, dstar=1.2)
    lb = ("method,D,dstar90,dstar90_high_open,acc_mean_r4,acc_mean_r16,acc_mean_r2\n"
          "full,1000,1000,,,,\nrandom_affine,1000,{d},{open},0.85,0.5,{ext}\nrandom_pruning,1000,,,0.6,0.3,\n")
    committed = lb.format(d=100, open="1", ext="")
    moved = compare_csv("leaderboard.csv", committed, lb.format(d="", open="", ext="0.86"), band)
    assert {(m.column, m.ok) for m in moved} == {("dstar90", True), ("dstar90_high_open", True),
                                                 ("acc_mean_r2", True)}  # D/d = 2: an extension cell appeared
    closed = lb.format(d=100, open="0", ext="")
    assert not all(m.ok for m in compare_csv("leaderboard.csv", closed, lb.format(d="", open="", ext=""), band))


def test_a_missing_method_is_never_within_tolerance():
    old, new = LB.format(d=100, a4="0.850"), LB.format(d=100, a4="0.850").rsplit("\n", 2)[0] + "\n"
    assert [m.ok for m in compare_csv("leaderboard.csv", old, new, Band(1, 10))] == [False]


def test_findings_across_machines_a_resolved_ordering_must_not_reverse():
    band = Band(acc=0.02, dstar=1.5)
    old = {"reference": {"test_acc": 0.63}, "ranking": ["a", "b"],
           "orderings": [{"a": "a", "b": "b", "relation": "<", "verdict": "a < b (CI excludes 0)"}]}
    unresolved = json.loads(json.dumps(old))
    unresolved["orderings"][0].update(relation=None, verdict="not resolved at n = 3")
    reversed_ = json.loads(json.dumps(old))
    reversed_["orderings"][0].update(relation=">", verdict="a > b (CI excludes 0)")
    assert all(m.ok for m in compare_findings(old, unresolved, band))
    assert not all(m.ok for m in compare_findings(old, reversed_, band))
    assert not all(m.ok for m in compare_findings(old, unresolved, None))  # the same machine: identical


def test_kernel_pins_keep_what_the_user_set(monkeypatch):
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    monkeypatch.delenv("DOFBENCH_NATIVE_KERNELS", raising=False)
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    set_now = determinism.pin_cpu_kernels()
    assert "MKL_CBWR" not in set_now and os.environ["MKL_CBWR"] == "COMPATIBLE"
    if determinism._has_avx2():
        assert os.environ["ATEN_CPU_CAPABILITY"] == "avx2"
    monkeypatch.setenv("DOFBENCH_NATIVE_KERNELS", "1")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert determinism.pin_cpu_kernels() == {} and "ONEDNN_MAX_CPU_ISA" not in os.environ


def test_a_result_folder_regenerates_bit_for_bit_and_a_tampered_one_does_not(tmp_path):
    out = tmp_path / "result"
    proc = _cli(["run", *FAST, f"out={out}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rec = json.loads((out / "provenance.json").read_text())
    assert rec["command"] == "python -m benchmark " + shlex.join(["run", *FAST, f"out={out}"])  # copy-pastable
    assert rec["config"]["memory_budget_mb"] == rec["memory_budget_mb"] > 0
    assert rec["torch"] and rec["cpu_model"] and rec["threads"] and rec["device"] == "cpu"
    assert set(rec["peak_rss_mb"]) == set(rec["wall_s"]) >= {"setup", "reference", "preparation", "members"}
    assert all(v > 50 for v in rec["peak_rss_mb"].values())  # MiB: torch alone holds more
    findings = json.loads((out / "findings.json").read_text())
    assert findings["reference"]["test_acc"] > 0.1 and set(findings["thresholds"]) == {"random_affine", "lottery_ticket"}
    for name in ("leaderboard.csv", "leaderboard.md", "paired.csv", "success_probability.csv"):
        assert (out / name).is_file()

    cache = Path(os.environ["DOFBENCH_CACHE"])
    before = sorted(cache.rglob("*"))
    work = tmp_path / "elsewhere"
    work.mkdir()
    ok = _cli(["verify", str(out)], work)
    assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr[-2000:]
    assert "every value must be identical" in ok.stdout and "reproduces bit for bit" in ok.stdout
    assert list(work.iterdir()) == [] and sorted(cache.rglob("*")) == before  # no store, no cache touched

    board = (out / "leaderboard.csv").read_text().splitlines()
    cols = board[0].split(",")
    row = board[1].split(",")
    row[cols.index("acc_mean_r1")] = "0.001"
    (out / "leaderboard.csv").write_text("\n".join([board[0], ",".join(row), *board[2:]]) + "\n")
    bad = _cli(["verify", str(out)], work)
    assert bad.returncode == 1 and "OUTSIDE" in bad.stdout and "does not reproduce" in bad.stderr
    assert "full" in bad.stdout and "acc_mean_r1" in bad.stdout


def test_verify_names_a_folder_without_provenance(tmp_path):
    proc = _cli(["verify", str(tmp_path)], tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("error: no provenance.json in ")
    assert "Traceback" not in proc.stderr


def test_same_machine_compares_what_decides_rounding():
    here = provenance.machine()
    assert provenance.same_machine(here, dict(here)) == []
    other_isa = "avx2" if here["cpu_vector_isa"] == "avx512f" else "avx512f"  # any value but this machine's
    assert provenance.same_machine(here, dict(here, cpu_vector_isa=other_isa)) == ["cpu_vector_isa"]
    assert provenance.same_machine(here, dict(here, torch="0.0")) == ["torch"]


@pytest.mark.parametrize("folder", sorted(p.parent.name for p in
                                          (Path(__file__).parents[1] / "leaderboards" / "results").glob("*/provenance.json")))
def test_every_committed_result_records_where_it_came_from(folder):
    root = Path(__file__).parents[1] / "leaderboards" / "results" / folder
    rec = provenance.read(root)
    assert rec["commit"] and rec["command"].startswith("python -m benchmark ")
    assert rec["peak_rss_mb"] and rec["cpu_model"] and "memory_budget_mb" in rec
    if rec.get("verb") in (None, "architectures"):  # populations sized by the budget: it decides the rounding
        assert rec["memory_budget_mb"] > 0


def test_the_recorded_command_is_one_a_user_can_type_again():
    line = provenance.command_line(["run", "preset=mnist5k_lenet5", "tracking.uri=sqlite:////tmp/x/m.db", "out=a b"])
    assert line == "python -m benchmark run preset=mnist5k_lenet5 'out=a b'"
    for flag in (["--tracking-uri", "sqlite:///t.db"], ["--tracking-uri=sqlite:///t.db"]):  # a study's alias
        assert provenance.command_line(["theory", "draws=8", *flag, "--out", "o"]) == "python -m benchmark theory draws=8 --out o"
