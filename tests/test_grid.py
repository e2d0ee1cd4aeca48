"""The grid runner: matched d, chunking to a memory budget, population vs one at a time."""
import pytest
import torch

from benchmark.config.build import build_config
from benchmark.core.errors import UserError
from benchmark.methods import METHODS
from benchmark.models import create_model
from benchmark.runner.grid import plan, train_cells
from benchmark.training.prep import init_weights, prepare
from tests.conftest import blobs, own_masks
from tests.test_cli import _raw


def _setup(overrides):
    from subspaces.flat import FlatModel

    cfg = build_config(_raw(overrides))
    data = blobs()
    make = lambda: create_model("mlp", data.input_shape, data.num_classes, hidden=[16])
    flat = FlatModel.of(make())
    w0 = torch.stack([init_weights(make, s) for s in cfg.seeds])
    cells = plan(cfg, flat.D)
    needs = set().union(*(METHODS[m].needs for m in cfg.methods))
    dims = sorted({c.d for c in cells if c.method != "full"})
    basis = max([c.d for c in cells if "subspace" in c.method], default=0)
    preps = prepare(list(cfg.seeds), w0, flat, data, cfg.train, needs, own_masks(cfg.methods, dims), cfg.burn_in_steps,
                    basis_dim=basis)
    return cfg, data, flat, cells, preps


OVERRIDES = ["methods=all", "ratios=[1,4,32]", "seeds=[0,1]", "epochs=2", "batch_size=64", "burn_in_steps=3",
             "lr_grid=[1]"]


def test_plan_gives_every_method_the_same_d_at_each_ratio():
    cfg, data, flat, cells, _ = _setup(OVERRIDES)
    assert len(cells) == 2 * (1 + (len(METHODS) - 1) * 2)
    for ratio in (4.0, 32.0):
        assert {c.d for c in cells if c.ratio == ratio} == {round(flat.D / ratio)}
    assert {(c.ratio, c.d) for c in cells if c.method == "full"} == {(1.0, flat.D)}


def test_every_cell_gets_the_same_number_of_candidate_lrs_around_its_family_centre():
    cfg = build_config(_raw(["methods=all", "ratios=[1,4]", "seeds=[0,1]", "lr=1e-2", "subspace_lr=3e-2",
                             "lr_grid=[3,0.3,1]"]))
    cells = plan(cfg, 1000)
    assert cfg.lr_grid == (0.3, 1.0, 3.0)
    by_cell = {}
    for c in cells:
        by_cell.setdefault((c.method, c.ratio, c.seed), []).append(c.lr)
    assert len(by_cell) == 2 * len(METHODS) and all(len(v) == 3 for v in by_cell.values())
    assert by_cell[("full", 1.0, 0)] == by_cell[("lottery_ticket", 4.0, 1)] == [0.003, 0.01, 0.03]
    assert by_cell[("random_affine", 4.0, 0)] == by_cell[("lottery_subspace_t", 4.0, 0)] == [0.009, 0.03, 0.09]
    assert len({c.name for c in cells}) == len(cells)


def test_config_hash_follows_the_preparation_plan_a_member_depends_on():
    from benchmark.runner.grid import member_hash, preparation_plan

    D = 1000
    cfg_a = build_config(_raw(["methods=all", "ratios=[1,4,16]", "seeds=[0]"]))
    cfg_b = build_config(_raw(["methods=all", "ratios=[1,16]", "seeds=[0]"]))
    cfgs = {"a": cfg_a, "b": cfg_b}
    plans = {k: preparation_plan(cfg, plan(cfg, D), D, 0.01) for k, cfg in cfgs.items()}

    def h(k, method, reference_lr=0.01):
        """The hash of `method`'s first member at D/d = 16 in invocation k, given the reference's lr."""
        cfg = cfgs[k]
        cell = next(c for c in plan(cfg, D) if c.method == method and c.ratio == 16.0)
        return member_hash(cfg, cell, preparation_plan(cfg, plan(cfg, D), D, reference_lr))

    # IMP to d = 62 through 250 (a) or straight to 62 (b): different masks, different hashes.
    assert plans["a"]["masks"]["ticket"] != plans["b"]["masks"]["ticket"]
    assert h("a", "lottery_ticket") != h("b", "lottery_ticket")
    assert h("a", "lottery_ticket_shuffled") != h("b", "lottery_ticket_shuffled")
    # A one-shot score's mask at d does not depend on the other d: the same hash.
    assert h("a", "snip") == h("b", "snip") and h("a", "synflow") == h("b", "synflow")
    assert h("a", "lottery_subspace") != h("b", "lottery_subspace")  # the basis is completed at its largest d
    # A method that needs no preparation keeps its hash (resume still reuses it) ...
    assert h("a", "random_affine") == h("b", "random_affine")
    # ... and every method that does changes with the reference's selected lr.
    for m in ("lottery_ticket", "burn_in_affine", "random_pruning_t", "lottery_subspace_t"):
        assert h("a", m) != h("a", m, reference_lr=0.03), m
    # The lr grid is part of every member's hash.
    cfg_c = build_config(_raw(["methods=all", "ratios=[1,4,16]", "seeds=[0]", "lr_grid=[0.5,1,2]"]))
    c_full = next(c for c in plan(cfg_c, D) if c.method == "full" and c.lr == 0.01)
    a_full = next(c for c in plan(cfg_a, D) if c.method == "full" and c.lr == 0.01)
    assert member_hash(cfg_c, c_full) != member_hash(cfg_a, a_full)


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


def test_lottery_bases_of_different_rank_train_in_one_population():
    """A seed whose trajectory has fewer independent directions than another's (seen on digits: 328 and
    330 of 330 snapshots) gives a completed basis of another rank at the same d: both train, each as
    it would alone."""
    few = ["methods=[full,lottery_subspace]", "ratios=[1,4]", *OVERRIDES[2:]]
    cfg, data, flat, cells, preps = _setup(few)
    r = preps[1].rank
    preps[1].basis, preps[1].rank = preps[1].basis[:, : r - 2], r - 2
    members = [c for c in cells if c.method == "lottery_subspace" and c.d > r - 2]
    assert members and {c.seed for c in members} == {0, 1}
    together = train_cells(cfg, members, preps, flat, data, on_done=lambda b: None)
    alone = train_cells(build_config(_raw(few + ["population=false"])), members, preps, flat, data,
                        on_done=lambda b: None)
    assert [o.status for o in together] == ["FINISHED"] * len(members)
    ref = {o.cell.name: o.metrics for o in alone}
    for o in together:
        assert o.metrics["test_acc"] == pytest.approx(ref[o.cell.name]["test_acc"], rel=1e-5, abs=1e-6)
