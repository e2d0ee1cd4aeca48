"""Description length in bits: the counts on hand-computed cases, and what each method pays for."""
import math

import pytest
import torch

from benchmark.training.description import (
    FLOAT_BITS,
    SEED_BITS,
    layer_count_bits,
    log2_binomial,
    mask_bits,
    member_bits,
)


@pytest.fixture(scope="module")
def tiny_preparation():
    """One seed's preparation for every method on a small MLP (D = 276), masks at d = D // 4."""
    from benchmark.methods import METHODS
    from benchmark.models import create_model
    from benchmark.training.loop import TrainConfig
    from benchmark.training.prep import init_weights, prepare
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
    # quantized θ: d·b bits and one FLOAT_BITS scale
    assert burned["data_free"] == 3 * 8 + FLOAT_BITS + 2 * SEED_BITS + 7.0 + 10 * FLOAT_BITS
    assert burned["data_conditional"] == 3 * 8 + FLOAT_BITS + 4 * SEED_BITS  # the recipe replaces w_t and the mask


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
    from benchmark.runner.grid import Cell, _outcome
    from benchmark.training.loop import PopulationResult

    flat, prep = tiny_preparation
    d = flat.D // 4
    cells = [Cell("lottery_ticket", 4.0, d, 0, 1e-2), Cell("lottery_ticket", 4.0, d, 0, 1e9)]
    result = PopulationResult(torch.zeros(2, flat.D), ["FINISHED", "FAILED"], [None, "diverged"],
                              [{"test_acc": 0.5}, {"test_acc": math.nan}], [{}, {}], 1.0, 10)
    done, failed = (_outcome(c, k, result, {0: prep}, 2, {}, cfg_bits=(8,)) for k, c in enumerate(cells))
    m = done.metrics
    assert m["description_bits.data_free"] > m["description_bits.data_conditional"] > 0
    # at 8 bits θ costs d·8 plus one 32-bit scale instead of d·32
    assert m["description_bits.data_free"] - m["description_bits.data_free.bits8"] == d * 24 - FLOAT_BITS
    assert not any(k.startswith("description_bits") for k in failed.metrics)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_quantized_theta_takes_at_most_2_to_the_b_values_per_member(bits):
    from benchmark.training.description import quantize

    theta = torch.randn(3, 500, generator=torch.Generator().manual_seed(bits))
    theta[2] = 0.0
    q = quantize(theta, bits)
    for k in range(3):
        assert len(torch.unique(q[k])) <= 2 ** bits
    step = theta[:2].abs().amax(1) / (2 ** (bits - 1) - 1)
    assert bool(((q[:2] - theta[:2]).abs() <= step[:, None] / 2 + 1e-6).all())  # rounding: at most half a step
    assert torch.equal(q[2], theta[2])  # θ = 0 has no scale and stays 0


def test_quantized_evaluation_barely_moves_at_16_bits_and_a_failed_member_reports_nan(flat, data):
    from benchmark.training.loop import Group, TrainConfig, train_population
    from subspaces import IdentityProjection, Subspace

    w0 = flat.flatten()
    sub = Subspace(w0[None].repeat(2, 1), IdentityProjection(2, flat.D))
    res = train_population(flat, [Group(sub, (1e-2, 1e12), (0, 0))], data,
                           TrainConfig(epochs=3, batch_size=32, optimizer="sgd", momentum=0.0), quantize_bits=(16, 2))
    ok, failed = res.metrics
    assert res.status == ["FINISHED", "FAILED"]
    assert abs(ok["test_acc.bits16"] - ok["test_acc"]) <= 0.01 and abs(ok["val_acc.bits16"] - ok["val_acc"]) <= 0.01
    assert 0 <= ok["test_acc.bits2"] <= 1
    assert math.isnan(failed["test_acc.bits16"]) and math.isnan(failed["val_acc.bits2"])
