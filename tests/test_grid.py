"""The grid runner: matched d, chunking to a memory budget, population vs one at a time."""
import pytest
import torch

from benchmark.config import build_config
from benchmark.errors import UserError
from benchmark.grid import plan, train_cells
from benchmark.methods import METHODS
from benchmark.models import create_model
from benchmark.prep import init_weights, prepare
from tests.conftest import blobs
from tests.test_cli import _raw


def _setup(overrides):
    from benchmark.flat import FlatModel

    cfg = build_config(_raw(overrides))
    data = blobs()
    make = lambda: create_model("mlp", data.input_shape, data.num_classes, hidden=[16])
    flat = FlatModel.of(make())
    w0 = torch.stack([init_weights(make, s) for s in cfg.seeds])
    cells = plan(cfg, flat.D)
    needs = set().union(*(METHODS[m].needs for m in cfg.methods))
    tickets = sorted({c.d for c in cells if "ticket" in c.method})
    basis = max([c.d for c in cells if "subspace" in c.method], default=0)
    preps = prepare(list(cfg.seeds), w0, flat, data, cfg.train, needs, tickets, cfg.burn_in_steps,
                    basis_dim=basis)
    return cfg, data, flat, cells, preps


OVERRIDES = ["methods=all", "ratios=[1,4,32]", "seeds=[0,1]", "epochs=2", "batch_size=64", "burn_in_steps=3"]


def test_plan_gives_every_method_the_same_d_at_each_ratio():
    cfg, data, flat, cells, _ = _setup(OVERRIDES)
    assert len(cells) == 2 * (1 + 8 * 2)
    for ratio in (4.0, 32.0):
        assert {c.d for c in cells if c.ratio == ratio} == {round(flat.D / ratio)}
    assert {(c.ratio, c.d) for c in cells if c.method == "full"} == {(1.0, flat.D)}


def test_plan_rejects_ratios_that_leave_no_dimension():
    cfg = build_config(_raw(["ratios=[4,1000000]"]))
    with pytest.raises(UserError, match="ratio 1e\\+06 gives d = 0"):
        plan(cfg, 1000)


def test_small_memory_budget_splits_the_population_and_changes_no_result():
    cfg, data, flat, cells, preps = _setup(OVERRIDES)
    batches_big, batches_small = [], []
    big = train_cells(cfg, cells, preps, flat, data, on_done=batches_big.append, memory_budget=2**34)
    small = train_cells(cfg, cells, preps, flat, data, on_done=batches_small.append, memory_budget=200_000)
    assert len(batches_big) == 1 and len(batches_small) > 3
    by_name = {o.cell.name: o for o in big}
    assert sorted(by_name) == sorted(o.cell.name for o in small)
    for o in small:
        for key in ("test_acc", "test_loss", "train_loss"):
            assert o.metrics[key] == pytest.approx(by_name[o.cell.name].metrics[key], rel=1e-5, abs=1e-6)


def test_population_false_trains_one_member_at_a_time_with_the_same_results():
    few = ["methods=[full,random_affine,lottery_ticket]"] + OVERRIDES[1:]
    cfg, data, flat, cells, preps = _setup(few)
    together = train_cells(cfg, cells, preps, flat, data, on_done=lambda b: None)
    alone_batches = []
    cfg_alone = build_config(_raw(few + ["population=false"]))
    alone = train_cells(cfg_alone, cells, preps, flat, data, on_done=alone_batches.append)
    assert len(alone_batches) == len(cells)
    ref = {o.cell.name: o.metrics for o in together}
    for o in alone:
        assert o.metrics["test_acc"] == pytest.approx(ref[o.cell.name]["test_acc"], rel=1e-5, abs=1e-6)
