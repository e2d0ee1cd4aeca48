import math

import pytest
import torch

from benchmark.training.loop import Group, TrainConfig, evaluate, train_population
from subspaces import CoordinateProjection, DenseProjection, IdentityProjection, Subspace, gaussian_directions, stack

CFG = TrainConfig(epochs=4, batch_size=32, lr=1e-2)


def _identity(flat, K=1):
    w0 = flat.flatten()
    return Subspace(w0[None].repeat(K, 1), IdentityProjection(K, flat.D))


def _dense(flat, d, seed):
    return Subspace(flat.flatten()[None], DenseProjection(gaussian_directions(flat.D, d, seed)[None]))


def test_training_lowers_the_loss_and_learns(flat, data):
    sub = _identity(flat)
    before_acc, before_loss = evaluate(flat, sub.offset, data.x_train, data.y_train, 512)
    res = train_population(flat, [Group(sub, 1e-2, (0,))], data, CFG)
    assert res.status == ["FINISHED"]
    assert res.metrics[0]["train_loss"] < 0.5 * float(before_loss[0])
    assert res.metrics[0]["test_acc"] > 0.9 > float(before_acc[0])
    assert res.steps == CFG.epochs * math.ceil(len(data.y_train) / CFG.batch_size)
    assert len(res.curves[0]["val_acc"]) == CFG.epochs


def test_subspace_training_learns_inside_the_subspace(flat, data):
    sub = _dense(flat, 40, seed=1)
    res = train_population(flat, [Group(sub, 5e-2, (0,))], data, CFG)
    w = res.weights[0] - sub.offset[0]
    # The displacement lies in the span of the 40 directions.
    basis = torch.linalg.qr(sub.projection.directions[0].T)[0]
    torch.testing.assert_close(basis @ (basis.T @ w), w, atol=1e-4, rtol=1e-4)
    assert res.metrics[0]["test_acc"] > 0.6


def test_same_config_gives_identical_metrics(flat, data):
    runs = [train_population(flat, [Group(_dense(flat, 30, seed=2), 5e-2, (7,))], data, CFG) for _ in range(2)]
    assert runs[0].metrics == runs[1].metrics
    assert torch.equal(runs[0].weights, runs[1].weights)


def test_a_member_in_a_population_matches_the_member_alone(flat, data):
    alone = train_population(flat, [Group(_dense(flat, 30, seed=2), 5e-2, (7,))], data, CFG)
    idx = torch.randperm(flat.D, generator=torch.Generator().manual_seed(0))[:50].sort().values
    offset = torch.zeros(1, flat.D)
    offset[0, idx] = flat.flatten()[idx]
    groups = [
        Group(_identity(flat, 2), 1e-2, (3, 7)),
        Group(Subspace(offset, CoordinateProjection(idx[None], flat.D)), 1e-2, (7,)),
        Group(_dense(flat, 30, seed=2), 5e-2, (7,)),  # the same member, last in a mixed population
    ]
    pop = train_population(flat, groups, data, CFG)
    together = pop.metrics[3]
    for key, value in alone.metrics[0].items():
        assert together[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


def test_members_with_other_seeds_see_other_data_orders(flat, data):
    res = train_population(flat, [Group(_identity(flat, 2), 1e-2, (1, 2))], data, CFG)
    assert not torch.equal(res.weights[0], res.weights[1])
    same = train_population(flat, [Group(_identity(flat, 2), 1e-2, (1, 1))], data, CFG)
    assert torch.equal(same.weights[0], same.weights[1])


def test_a_diverging_member_fails_and_the_others_go_on(flat, data):
    groups = [Group(_identity(flat), 1e-2, (0,)), Group(_identity(flat), 1e12, (0,))]
    res = train_population(flat, groups, data, TrainConfig(epochs=3, batch_size=32, optimizer="sgd", momentum=0.0))
    assert res.status == ["FINISHED", "FAILED"]
    assert "non-finite" in res.reasons[1]
    assert res.metrics[0]["test_acc"] > 0.8
    assert math.isnan(res.metrics[1]["test_acc"])


def test_per_member_learning_rates_in_one_group_train_as_separate_groups(flat, data):
    """Candidates of one cell share a group (one projection call); each keeps its own lr, and one
    that diverges is parked without touching the others."""
    lrs = (1e-2, 1e-2, 3e-2, 1e12)
    cfg = TrainConfig(epochs=2, batch_size=32, optimizer="sgd", momentum=0.0)
    shared = Group(stack([_dense(flat, 30, seed=2)] * 4), lrs, (7,) * 4)
    assert shared.blocks() == [(slice(0, 2), 1e-2), (slice(2, 3), 3e-2), (slice(3, 4), 1e12)]
    together = train_population(flat, [shared], data, cfg)
    apart = train_population(flat, [Group(_dense(flat, 30, seed=2), lr, (7,)) for lr in lrs], data, cfg)
    assert together.status == apart.status == ["FINISHED", "FINISHED", "FINISHED", "FAILED"]
    torch.testing.assert_close(together.weights[:3], apart.weights[:3], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(together.weights[0], together.weights[2])
    with pytest.raises(ValueError, match="3 learning rates for 4 members"):
        Group(stack([_dense(flat, 30, seed=2)] * 4), lrs[:3], (7,) * 4)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_pruned_weights_stay_exactly_zero_under_momentum_and_weight_decay(flat, data, optimizer):
    idx = torch.randperm(flat.D, generator=torch.Generator().manual_seed(1))[: flat.D // 5].sort().values
    offset = torch.zeros(1, flat.D)
    offset[0, idx] = flat.flatten()[idx]
    sub = Subspace(offset, CoordinateProjection(idx[None], flat.D))
    cfg = TrainConfig(epochs=3, batch_size=32, optimizer=optimizer, weight_decay=0.1, momentum=0.9)
    res = train_population(flat, [Group(sub, 1e-2, (0,))], data, cfg)
    pruned = ~sub.projection.mask()[0]
    assert int(pruned.sum()) == flat.D - flat.D // 5
    assert bool((res.weights[0][pruned] == 0).all())
    assert not torch.equal(res.weights[0][~pruned], offset[0][~pruned])  # the kept ones did train


def test_one_member_without_vmap_matches_a_member_of_a_vmapped_pair_in_logits_and_gradient(flat, data):
    """K = 1 skips vmap and the flat vector is split, not sliced: the same maths as the batched path."""
    x = data.x_train[:32]
    w = flat.flatten()
    W1 = w[None].clone().requires_grad_()
    W2 = torch.stack([w, w.flip(0)]).requires_grad_()
    out1, out2 = flat.batched(W1, x, True), flat.batched(W2, x, True)
    torch.testing.assert_close(out1[0], out2[0], rtol=1e-5, atol=1e-6)
    out1.square().sum().backward()
    out2[0].square().sum().backward()
    torch.testing.assert_close(W1.grad[0], W2.grad[0], rtol=1e-5, atol=1e-6)
    assert float(W2.grad[1].abs().sum()) == 0  # the other member gets no gradient from member 0's loss


def test_the_optimizers_use_torchs_fused_kernel_on_this_device():
    from benchmark.training.loop import _make_optimizer

    for name in ("adam", "sgd"):
        opt = _make_optimizer([{"params": [torch.zeros(3, requires_grad=True)], "lr": 0.1}], CFG, name)
        assert opt.defaults["fused"] is True, name
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'; accepted: adam, sgd"):
        _make_optimizer([], CFG, "lbfgs")


class _ItemModel(torch.nn.Module):
    """A model vmap cannot run: it reads a tensor's value in Python."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(12, 4)

    def forward(self, x):
        h = self.lin(x.flatten(1))
        return h * 2 if float(h.abs().mean()) > -1 else h


def test_a_model_that_cannot_run_under_vmap_falls_back_with_a_warning(data):
    from subspaces.flat import FlatModel

    flat = FlatModel.of(_ItemModel())
    with pytest.warns(UserWarning, match="cannot run under torch.func.vmap"):
        res = train_population(flat, [Group(_identity(flat, 2), 1e-2, (0, 1))], data, CFG)
    assert res.status == ["FINISHED", "FINISHED"]
    assert res.metrics[0]["test_acc"] > 0.8


def test_datasets_stay_whole_on_a_cpu_and_report_their_size(data):
    moved = data.to("cpu", stream_above_bytes=0)  # streaming is host -> GPU only
    assert not moved.streamed and moved.x_train.device.type == "cpu"
    assert data.nbytes == sum(t.nbytes for t in (data.x_train, data.y_train, data.x_val, data.y_val,
                                                 data.x_test, data.y_test))
    idx = torch.tensor([3, 1])
    assert torch.equal(data.take(data.x_train, idx), data.x_train[idx])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="streaming copies batches from host to a GPU")
def test_streamed_dataset_trains_exactly_like_a_resident_one(data):
    torch.manual_seed(0)
    from benchmark.models import create_model
    from subspaces.flat import FlatModel

    flat = FlatModel.of(create_model("mlp", data.input_shape, data.num_classes, hidden=[16]).cuda())
    resident, streamed = data.to("cuda"), data.to("cuda", stream_above_bytes=0)
    assert streamed.streamed and streamed.x_train.device.type == "cpu" and not resident.streamed
    runs = [train_population(flat, [Group(_dense(flat, 30, seed=2).to("cuda"), 5e-2, (7,))], d, CFG)
            for d in (resident, streamed)]
    assert runs[0].metrics == runs[1].metrics


def test_anchor_accuracy_is_the_model_evaluated_at_its_offset(flat, data):
    """theta0_* is each member at θ = 0, i.e. w = b: its anchor (masked, for pruning), before training."""
    idx = torch.randperm(flat.D, generator=torch.Generator().manual_seed(3))[: flat.D // 3].sort().values
    masked = torch.zeros(1, flat.D)
    masked[0, idx] = flat.flatten()[idx]
    groups = [Group(_dense(flat, 20, seed=4), 5e-2, (0,)),
              Group(Subspace(masked, CoordinateProjection(idx[None], flat.D)), 1e-2, (0,))]
    res = train_population(flat, groups, data, CFG)
    for k, b in enumerate([groups[0].subspace.offset, masked]):
        acc_test, _ = evaluate(flat, b, data.x_test, data.y_test, 512)
        acc_val, _ = evaluate(flat, b, data.x_val, data.y_val, 512)
        assert res.metrics[k]["theta0_test_acc"] == float(acc_test[0])
        assert res.metrics[k]["theta0_val_acc"] == float(acc_val[0])
        assert res.metrics[k]["test_acc"] > res.metrics[k]["theta0_test_acc"]  # training moved it


def test_a_group_may_train_theta_with_its_own_optimizer(flat, data):
    """Group.optimizer overrides the config's for that group alone (SGD on θ of general subspaces)."""
    cfg = TrainConfig(epochs=2, batch_size=32, optimizer="adam")
    sgd_cfg = TrainConfig(epochs=2, batch_size=32, optimizer="sgd")
    mixed = train_population(flat, [Group(_identity(flat), 1e-2, (0,)), Group(_dense(flat, 30, seed=2), 5e-2, (0,), "sgd")],
                             data, cfg)
    adam = train_population(flat, [Group(_identity(flat), 1e-2, (0,))], data, cfg)
    sgd = train_population(flat, [Group(_dense(flat, 30, seed=2), 5e-2, (0,))], data, sgd_cfg)
    torch.testing.assert_close(mixed.weights[0], adam.weights[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(mixed.weights[1], sgd.weights[0], rtol=1e-5, atol=1e-6)
