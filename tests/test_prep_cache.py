"""Preparation is computed once per seed and content, and reused across invocations."""
import os
import re

import pytest
import torch

import benchmark.runner.run as run_module
from benchmark.config.build import build_config
from benchmark.runner import prep_cache
from benchmark.training.prep import Preparation
from leaderboards.source import records_from_mlflow
from subspaces.flat import FlatModel
from tests.test_cli import _raw

OVERRIDES = ["methods=[lottery_ticket_t,lottery_subspace]", "ratios=[64]", "seeds=[0,1]", "epochs=1",
             "dataset.train_size=256", "burn_in_steps=2", "lr_grid=[1]", "extension.enabled=false"]


@pytest.fixture
def counted(monkeypatch, tmp_path):
    monkeypatch.setenv("DOFBENCH_CACHE", str(tmp_path / "cache"))
    calls = []
    real = prep_cache.prepare_base

    def counting(seeds, *a, **k):
        calls.append(list(seeds))
        return real(seeds, *a, **k)

    monkeypatch.setattr(prep_cache, "prepare_base", counting)
    return calls


def _run(tmp_path, overrides=OVERRIDES, name="store"):
    cfg = build_config(dict(_raw(overrides), tracking={"uri": f"sqlite:///{tmp_path}/store.db", "experiment": name}))
    out = run_module.run(cfg, out=open(os.devnull, "w"))
    return {o.cell.name: {k: v for k, v in o.metrics.items() if k != "wall_time_s"} for o in out["outcomes"]}


@pytest.mark.slow
def test_second_invocation_reuses_the_preparation_and_gets_identical_metrics(counted, tmp_path):
    first = _run(tmp_path, name="a")
    assert counted == [[0, 1]]  # one preparation, all seeds batched
    second = _run(tmp_path, name="b")
    assert counted == [[0, 1]]  # nothing recomputed
    assert first == second
    _run(tmp_path, OVERRIDES[:2] + ["seeds=[0,2]"] + OVERRIDES[3:], name="c")
    assert counted == [[0, 1], [2]]  # only the new seed


@pytest.mark.slow
def test_a_corrupt_or_truncated_cache_file_is_recomputed(counted, tmp_path):
    first = _run(tmp_path, name="a")
    files = sorted((tmp_path / "cache" / "prep").glob("*.pt"))
    assert len(files) == 4  # per seed: the base and the ticket masks
    for i, f in enumerate(files):
        f.write_bytes(f.read_bytes()[:100] if i % 2 else b"not a torch file at all")  # truncated or garbage
    again = _run(tmp_path, name="b")
    assert counted == [[0, 1], [0, 1]]
    assert again == first


@pytest.mark.slow
def test_masks_a_later_invocation_adds_reuse_the_cached_full_run(counted, tmp_path, monkeypatch):
    """An extension wave's new IMP targets (or a method added later) prepare their masks only."""
    first = _run(tmp_path, name="a")
    masks_for = []
    real = prep_cache.prepare_masks
    monkeypatch.setattr(prep_cache, "prepare_masks", lambda preps, *a, **k: (masks_for.append(list(a[3])),
                                                                              real(preps, *a, **k))[1])
    added = _run(tmp_path, ["methods=[lottery_ticket_t,lottery_subspace,snip]"] + OVERRIDES[1:], name="b")
    assert counted == [[0, 1]] and masks_for == [["snip"]]  # the full run, trajectories and tickets: cached
    assert all(first[n] == added[n] for n in first)
    _run(tmp_path, OVERRIDES[:1] + ["ratios=[64,128]"] + OVERRIDES[2:], name="c")  # new IMP targets, same basis
    assert counted == [[0, 1]] and masks_for == [["snip"], ["ticket"]]


def test_cache_files_hold_only_tensors_and_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("DOFBENCH_CACHE", str(tmp_path))
    p = Preparation(seed=3, w0=torch.randn(50), wt=torch.randn(50), burn_in_steps=4, full_steps=10,
                    basis=torch.linalg.qr(torch.randn(50, 5))[0], rank=5, dense=torch.randn(50),
                    masks={"ticket.w0": {7: torch.arange(7)}, "snip.w0": {7: torch.arange(7) + 1}},
                    rounds={"ticket": {7: 2}})
    prep_cache.store("k", p)
    prep_cache.store_part("t", "ticket", p)
    raw = torch.load(tmp_path / "prep" / "k.pt", weights_only=True)  # no pickled objects: would raise

    def plain(v):
        return isinstance(v, (torch.Tensor, int, type(None))) or (isinstance(v, dict) and all(map(plain, v.values())))
    assert all(plain(v) for v in raw.values()) and not {"model", "masks", "rounds"} & set(raw)
    flat = FlatModel.of(torch.nn.Linear(7, 5))  # D = 40
    model = FlatModel.of(torch.nn.Sequential(torch.nn.Linear(4, 10)))  # D = 50
    q = prep_cache.load("k", model, "cpu")
    assert q.model is model and q.masks == {} and q.rounds == {}
    assert torch.equal(q.wt, p.wt) and torch.equal(q.basis, p.basis) and torch.equal(q.dense, p.dense)
    part = prep_cache.load_part("t", "ticket", 50, "cpu")
    assert list(part["masks"]) == ["ticket.w0"] and part["rounds"] == {"ticket": {7: 2}}  # its own kind only
    assert torch.equal(part["masks"]["ticket.w0"][7], torch.arange(7))
    assert prep_cache.load("k", flat, "cpu") is None  # another model's D: not trusted
    assert prep_cache.load_part("t", "snip", 50, "cpu") is None  # another kind's part
    # A file of another version (a field more or less than today's Preparation) is recomputed, not trusted.
    torch.save({**raw, "tickets": {}}, tmp_path / "prep" / "k.pt")
    assert prep_cache.load("k", model, "cpu") is None
    torch.save({k: v for k, v in raw.items() if k != "dense"}, tmp_path / "prep" / "k.pt")
    assert prep_cache.load("k", model, "cpu") is None
    # A malformed mask (an index past D, or repeated) is not trusted either.
    for bad in (torch.arange(44, 51), torch.zeros(7, dtype=torch.long)):
        torch.save({"masks": {"ticket.w0": {7: bad}}, "rounds": {}}, tmp_path / "prep" / "t.pt")
        assert prep_cache.load_part("t", "ticket", 50, "cpu") is None


def test_rerun_skips_members_finished_with_the_same_hash_and_force_reruns_them(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("DOFBENCH_CACHE", str(tmp_path / "cache"))
    few = ["methods=[full,random_affine]", "ratios=[1,16,64]", "seeds=[0]", "epochs=1", "dataset.train_size=256",
           "lr_grid=[1]", "extension.enabled=false"]

    def run(extra=()):
        cfg = build_config(dict(_raw(few + list(extra)), tracking={"uri": f"sqlite:///{tmp_path}/s.db", "experiment": "e"}))
        return run_module.run(cfg, out=open(os.devnull, "w"))

    first = run()
    assert len(first["outcomes"]) == 3 and not first["reused"]
    again = run()
    assert again["outcomes"] == [] and len(again["reused"]) == 3
    assert [r.method for r in again["leaderboard"].rows] == [r.method for r in first["leaderboard"].rows]
    # A new ratio runs only the missing member; force re-runs everything.
    more = run(["ratios=[1,16,64,256]"])
    assert [o.cell.name for o in more["outcomes"]] == ["random_affine-r256-s0-lr0.1"]
    # Read back from MLflow, a resumed parent's members include the ones it reused (as the sweep's and
    # the `leaderboard --run` verb's leaderboards need).
    uri = f"sqlite:///{tmp_path}/s.db"
    first_ids = {r.info.run_id for r in MlflowClient(uri).search_runs(
        [MlflowClient(uri).get_experiment_by_name("e").experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{first['parent_run_id']}'")}
    (records,) = records_from_mlflow(parent_run_id=more["parent_run_id"], tracking_uri=uri).values()
    assert len(records) == 4 and {r["run_id"] for r in records} > first_ids
    (records,) = records_from_mlflow(parent_run_id=again["parent_run_id"], tracking_uri=uri).values()
    assert {r["run_id"] for r in records} == first_ids
    forced = run(["force=true"])
    assert len(forced["outcomes"]) == 3 and not forced["reused"]


def test_write_cache_is_atomic_and_a_failed_write_leaves_nothing(tmp_path):
    from benchmark.data.splits import write_cache

    path = tmp_path / "c" / "x.bin"
    assert write_cache(path, lambda tmp: tmp.write_bytes(b"abc"))
    assert path.read_bytes() == b"abc"

    def fails_half_way(tmp):
        tmp.write_bytes(b"half")
        raise OSError(28, "No space left on device")

    with pytest.warns(UserWarning, match=r"not cached: cannot write .*x\.bin: No space left on device"):
        assert not write_cache(path, fails_half_way)
    assert path.read_bytes() == b"abc"  # the old file is untouched
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.bin"]  # no temp file left


def test_an_unwritable_cache_folder_warns_and_the_run_goes_on(tmp_path, monkeypatch):
    (tmp_path / "a_file").write_text("not a folder")
    monkeypatch.setenv("DOFBENCH_CACHE", str(tmp_path / "a_file" / "cache"))
    few = ["methods=[full,burn_in_affine]", "ratios=[1,8]", "seeds=[0]", "epochs=1", "dataset.train_size=256",
           "burn_in_steps=2", "lr_grid=[1]", "extension.enabled=false"]
    cfg = build_config(dict(_raw(few), tracking={"uri": f"sqlite:///{tmp_path}/m.db", "experiment": "e"}))
    with pytest.warns(UserWarning, match="not cached: cannot write") as caught:
        result = run_module.run(cfg, out=open(os.devnull, "w"))
    uncached = [str(w.message) for w in caught if str(w.message).startswith("not cached")]
    # The generated dataset and the preparation both went uncached, each with the path and the cause.
    assert any(re.search(r"/mnist1d-\w+\.npz: Not a directory;", m) for m in uncached), uncached
    assert any(re.search(r"/prep/\w+\.pt: Not a directory; it will be recomputed next time$", m)
               for m in uncached), uncached
    assert {o.status for o in result["outcomes"]} == {"FINISHED"} and len(result["outcomes"]) == 2
