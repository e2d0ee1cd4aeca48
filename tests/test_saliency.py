"""Pruning at initialization and the per-layer controls: scores against hand computations, exact
counts, and the properties the literature relies on (SynFlow avoids layer collapse, layer-shuffled
masks keep per-layer counts)."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from baselines import (erk_coordinates, erk_counts, grasp_scores, keep_top, magnitude_scores, shuffle_within_layers,
                       snip_scores, synflow_mask, synflow_scores)
from subspaces.flat import FlatModel


def _two_layer(seed=0, sizes=(3, 4, 2)):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(sizes[0], sizes[1], bias=False), nn.Linear(sizes[1], sizes[2], bias=False))


def test_synflow_score_is_the_sum_of_path_products_of_absolute_weights():
    net = _two_layer()
    flat = FlatModel.of(net)
    W1, W2 = net[0].weight.detach(), net[1].weight.detach()
    # R = 1ᵀ |W2| |W1| 1: a weight's score is |w| times the sum of |weights| on the paths through it.
    want1 = W1.abs() * W2.abs().sum(0)[:, None]
    want2 = W2.abs() * W1.abs().sum(1)[None, :]
    got = synflow_scores(flat, flat.flatten(), (3,))
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, torch.cat([want1.reshape(-1), want2.reshape(-1)]).double())


def test_snip_score_is_gradient_times_weight_of_the_module_itself():
    net = _two_layer(1)
    flat = FlatModel.of(net)
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    F.cross_entropy(net(x), y).backward()
    want = torch.cat([(p.grad * p).abs().reshape(-1) for p in net.parameters()])
    torch.testing.assert_close(snip_scores(flat, flat.flatten(), x, y), want.detach())


def test_grasp_score_is_minus_w_times_hessian_gradient_product_at_temperature():
    net = _two_layer(2)
    flat = FlatModel.of(net)
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    w = flat.flatten()
    T = 200.0
    loss = lambda v: F.cross_entropy(flat(v, x) / T, y)
    g = torch.func.grad(loss)(w)
    H = torch.autograd.functional.hessian(loss, w)
    torch.testing.assert_close(grasp_scores(flat, w, x, y, T), -(w * (H @ g)), atol=1e-9, rtol=1e-4)


def test_scores_do_not_touch_the_models_batchnorm_statistics():
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    flat = FlatModel.of(net)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    snip_scores(flat, flat.flatten(), x, y)
    grasp_scores(flat, flat.flatten(), x, y)
    synflow_scores(flat, flat.flatten(), (3,))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert net.training  # eval mode for SynFlow only while it scores


def test_keep_top_keeps_exactly_d_and_every_non_prunable_coordinate():
    score = torch.tensor([5.0, 1.0, 4.0, 2.0, 3.0, 0.0])
    assert keep_top(score, 2).tolist() == [0, 2]
    prunable = torch.tensor([True, True, True, True, True, False])
    assert keep_top(score, 3, prunable).tolist() == [0, 2, 5]
    with pytest.raises(ValueError, match="non-prunable"):
        keep_top(score, 0, prunable)


def test_synflow_keeps_every_layer_alive_where_global_magnitude_empties_one():
    # Kaiming-uniform init: the wide first layer's weights are small (bound 1/sqrt(1000)), the last
    # layer's large (1/sqrt(100)); at D/d = 1000 global magnitude keeps only the last layer's.
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(1000, 100, bias=False), nn.ReLU(), nn.Linear(100, 10, bias=False))
    flat = FlatModel.of(net)
    w = flat.flatten()
    d = round(flat.D / 1000)
    per_layer = lambda idx: [int(((idx >= sl.start) & (idx < sl.stop)).sum()) for sl in flat.slices]
    magnitude = keep_top(magnitude_scores(w), d)
    synflow = synflow_mask(flat, w, d, (1000,))
    assert synflow.numel() == magnitude.numel() == d == synflow.unique().numel()
    assert per_layer(magnitude)[0] == 0
    assert min(per_layer(synflow)) > 0


def test_layer_shuffle_keeps_per_layer_counts_exactly_and_moves_the_coordinates():
    layers = [slice(0, 100), slice(100, 110), slice(110, 400)]
    index = torch.cat([torch.arange(0, 30), torch.arange(100, 110), torch.arange(110, 115)])
    out = shuffle_within_layers(index, layers, seed=3)
    count = lambda idx: [int(((idx >= s.start) & (idx < s.stop)).sum()) for s in layers]
    assert count(out) == count(index) == [30, 10, 5]
    assert out.unique().numel() == out.numel() and not torch.equal(out, index)
    assert torch.equal(out, shuffle_within_layers(index, layers, seed=3))


def test_erk_counts_sum_to_d_scale_with_the_layer_and_cap_at_dense():
    shapes = [(300, 100), (300,), (100, 300), (10, 100), (10,)]
    for d in (1, 17, 1000, 30000, 61309, 61310):
        counts = erk_counts(shapes, d)
        assert sum(counts) == d and all(0 <= c <= torch.Size(s).numel() for c, s in zip(counts, shapes))
    counts = erk_counts(shapes, 5000)
    density = [c / torch.Size(s).numel() for c, s in zip(counts, shapes)]
    assert density[1] == density[4] == 1.0  # biases (scale 1) saturate first
    assert density[3] > density[0]  # the small output layer is denser than the wide hidden one
    idx = erk_coordinates(shapes, [slice(0, 30000), slice(30000, 30300), slice(30300, 60300), slice(60300, 61300),
                                   slice(61300, 61310)], 5000, seed=0)
    assert idx.numel() == 5000 and idx.unique().numel() == 5000
