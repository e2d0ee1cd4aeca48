"""A new method is one module plus one `register` call: the README's example, registered from this
file and run end to end through `run`."""
import os

import pytest
import torch

from benchmark.methods import DIRECTIONS, METHODS, Directions, coordinates, register


def head_only(prep, method, d, anchor, projection):
    """The last d coordinates of w: the output layer first (train the head only)."""
    D = anchor.numel()
    return coordinates(torch.arange(D - d, D), anchor)


@pytest.fixture
def registered():
    register("last_coordinates", Directions(head_only), {"head_only": ("pruning", "w0")})
    yield
    del DIRECTIONS["last_coordinates"], METHODS["head_only"]


def test_a_method_registered_from_outside_runs_end_to_end(registered, tmp_path, monkeypatch):
    import benchmark.runner.run as run_module
    from benchmark.config.build import build_config
    from tests.test_cli import _raw

    monkeypatch.setenv("DOFBENCH_CACHE", str(tmp_path / "cache"))
    raw = _raw(["preset=smoke", "methods=[full,head_only]", "ratios=[1,64]", "dataset.train_size=256", "epochs=1",
                "lr_grid=[1]"])
    cfg = build_config(dict(raw, tracking={"uri": f"sqlite:///{tmp_path}/s.db", "experiment": "e"}))
    assert cfg.methods == ("full", "head_only")
    out = run_module.run(cfg, out=open(os.devnull, "w"))
    head = [o for o in out["outcomes"] if o.cell.method == "head_only"]
    assert [o.status for o in head] == ["FINISHED"]
    D, d = out["leaderboard"].D, head[0].cell.d
    assert d == round(D / 64)
    # All d coordinates sit in the last tensors (the output layer's bias, then its weight).
    density = {k: v for k, v in head[0].metrics.items() if k.startswith("layer_density.")}
    assert density["layer_density.5.bias"] == 1.0 and density["layer_density.1.weight"] == 0.0
    assert "head_only" in [row.method for row in out["leaderboard"].rows]


def test_registering_a_kind_twice_is_refused(registered):
    with pytest.raises(ValueError, match="registered twice"):
        register("last_coordinates", Directions(head_only), {"head_only2": ("pruning", "w0")})
