"""Committed results that CI does not re-run are fresh: the code they were made with is today's.

CI re-runs the smoke preset (`golden`) and the default result (`verify`) on every change. The other
committed results take 6 to 20 minutes each, so instead each provenance.json records the fingerprint of
the code it depends on (every project module the run imported, comments and docstrings aside), and a
change to that code fails here until the result is re-published, or until `python -m benchmark verify
FOLDER --accept` shows it still reproduces (then it records the new fingerprint).
"""
from pathlib import Path

import pytest

from benchmark.runner import provenance

RESULTS = Path(__file__).parents[1] / "leaderboards" / "results"
RERUN_BY_CI = ("smoke", "mnist1d-mlp")


@pytest.mark.parametrize("folder", sorted(p.name for p in RESULTS.iterdir() if p.is_dir() and p.name not in RERUN_BY_CI))
def test_committed_result_is_fresh(folder):
    root = RESULTS / folder
    if not (root / provenance.FILE).is_file():
        pytest.fail(f"leaderboards/results/{folder} has no provenance.json: re-publish it from main")
    rec = provenance.read(root)
    stale = provenance.stale_files(rec.get("code") or {})
    assert rec.get("code"), f"leaderboards/results/{folder}/provenance.json records no code fingerprint"
    assert not stale, (f"leaderboards/results/{folder} was made with other code in {', '.join(stale)}: re-publish it "
                       f"(`{rec['command']}`) or, if `python -m benchmark verify leaderboards/results/{folder} "
                       f"--accept` passes, it records today's fingerprint")


def test_a_changed_module_makes_a_result_stale(tmp_path, monkeypatch):
    module = tmp_path / "benchmark" / "m.py"
    module.parent.mkdir()
    module.write_text('"""Doc."""\nX = 1  # a comment\n')
    monkeypatch.setattr(provenance, "ROOT", tmp_path)
    recorded = {"benchmark/m.py": provenance._source_hash(module)}
    module.write_text('"""Another doc."""\nX = 1  # another comment\n')
    assert provenance.stale_files(recorded) == []  # prose moves nothing
    module.write_text('"""Doc."""\nX = 2\n')
    assert provenance.stale_files(recorded) == ["benchmark/m.py"]
    module.unlink()
    assert provenance.stale_files(recorded) == ["benchmark/m.py"]
