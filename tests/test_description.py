"""Description length in bits: the counts on hand-computed cases, and what each method pays for."""
import math

import pytest
import torch

from benchmark.description import FLOAT_BITS, SEED_BITS, layer_count_bits, log2_binomial, mask_bits, member_bits


@pytest.fixture(scope="module")
def tiny_preparation():
    """One seed's preparation for every method on a small MLP (D = 276), masks at d = D // 4."""
    from benchmark.methods import METHODS
    from benchmark.models import create_model
    from benchmark.prep import init_weights, prepare
    from benchmark.train import TrainConfig
    from subspaces.flat import FlatModel
    from tests.conftest import blobs, own_masks

    data = blobs()
    make = lambda: create_model("mlp", data.input_shape, data.num_classes, hidden=[16])
    flat = FlatModel.of(make())
    needs = set().union(*(m.needs for m in METHODS.values()))
    d = flat.D // 4
    preps = prepare([0], torch.stack([init_weights(make, 0)]), flat, data, TrainConfig(epochs=1, batch_size=64),
                    needs, own_masks(METHODS, [d]), 2, basis_dim=d)
    return flat, preps[0]


def test_bit_counts_on_hand_computed_cases():
    assert log2_binomial(10, 3) == pytest.approx(math.log2(120), abs=1e-12)
    assert mask_bits(10, 3) == pytest.approx(math.log2(120), abs=1e-12)
    assert mask_bits(12, 5, fixed=2) == pytest.approx(math.log2(120), abs=1e-12)  # the 2 kept always are free
    assert log2_binomial(7, 0) == 0 and log2_binomial(7, 7) == 0
    assert log2_binomial(266_610, 2_083) == pytest.approx(  # large: log-gamma, checked against exact integers
        math.log2(math.comb(266_610, 2_083)), rel=1e-12)
    assert layer_count_bits([3, 7]) == pytest.approx(2 + 3)
    with pytest.raises(ValueError, match="0 <= k <= n, got n = 3, k = 4"):
        log2_binomial(3, 4)


def test_member_bits_pay_theta_seeds_and_what_was_derived_from_data():
    plain = member_bits(d=3, D=10, data_bits=0.0, trained_anchor=False)
    assert plain == {"data_free": 3 * FLOAT_BITS + 2 * SEED_BITS, "data_conditional": 3 * FLOAT_BITS + 4 * SEED_BITS}
    burned = member_bits(d=3, D=10, data_bits=7.0, trained_anchor=True, theta_bits=8)
    assert burned["data_free"] == 3 * 8 + 2 * SEED_BITS + 7.0 + 10 * FLOAT_BITS
    assert burned["data_conditional"] == 3 * 8 + 4 * SEED_BITS  # the recipe replaces w_t and the mask


def test_each_method_pays_for_its_data_derived_parts(tiny_preparation):
    from benchmark.methods import description_bits

    flat, prep = tiny_preparation
    D, d, r = flat.D, flat.D // 4, prep.rank
    bits = {m: description_bits(m, prep, d) for m in ("random_pruning", "synflow", "lottery_ticket", "snip",
                                                       "lottery_ticket_shuffled", "synflow_shuffled", "random_affine",
                                                       "burn_in_affine", "lottery_subspace", "lottery_ticket_t")}
    free = {m: b["data_free"] for m, b in bits.items()}
    base = free["random_pruning"]
    assert base == d * FLOAT_BITS + 2 * SEED_BITS
    assert free["synflow"] == free["synflow_shuffled"] == free["random_affine"] == base  # seeds, or functions of w0
    assert free["lottery_ticket"] - base == pytest.approx(math.log2(math.comb(D, d)), rel=1e-9)
    assert free["snip"] == free["lottery_ticket"]
    assert free["lottery_ticket_shuffled"] - base == pytest.approx(sum(math.log2(s.stop - s.start + 1)
                                                                       for s in flat.slices))
    assert free["burn_in_affine"] - base == D * FLOAT_BITS
    assert free["lottery_ticket_t"] - free["lottery_ticket"] == D * FLOAT_BITS
    assert free["lottery_subspace"] - base == D * min(d, r) * FLOAT_BITS
    # Given the data, every method is its θ plus seeds and a recipe.
    assert len({b["data_conditional"] for b in bits.values()}) == 1
    full = description_bits("full", prep, D)
    assert full["data_free"] == D * FLOAT_BITS + 2 * SEED_BITS


def test_a_failed_member_has_no_bits_and_a_finished_one_logs_both_codes(tiny_preparation):
    from benchmark.grid import Cell, _outcome
    from benchmark.train import PopulationResult

    flat, prep = tiny_preparation
    d = flat.D // 4
    cells = [Cell("lottery_ticket", 4.0, d, 0, 1e-2), Cell("lottery_ticket", 4.0, d, 0, 1e9)]
    result = PopulationResult(torch.zeros(2, flat.D), ["FINISHED", "FAILED"], [None, "diverged"],
                              [{"test_acc": 0.5}, {"test_acc": math.nan}], [{}, {}], 1.0, 10)
    done, failed = (_outcome(c, k, result, {0: prep}, 2, {}) for k, c in enumerate(cells))
    assert done.metrics["description_bits.data_free"] > done.metrics["description_bits.data_conditional"] > 0
    assert not any(k.startswith("description_bits") for k in failed.metrics)
