"""The linearized network f_lin(w) = f(w0) + J(w0)(w − w0) as a model: exact to first order at w0, exactly
affine in w, the stored-J theory's function, and trainable in a subspace by the one training loop."""
import pytest
import torch

from benchmark.models import create_model
from benchmark.training.loop import Group, TrainConfig, evaluate, train_population
from subspaces import DenseProjection, FlatModel, Subspace, gaussian_directions
from subspaces.taylor import LinearizedNetwork
from subspaces.theory import linearized as L


def _pair(data, seed=0):
    torch.manual_seed(seed)
    base = create_model("mlp", data.input_shape, data.num_classes, hidden=[16])
    return FlatModel.of(base), FlatModel.of(LinearizedNetwork(base))


def test_it_has_the_models_weights_and_is_the_model_at_w0(data):
    base, lin = _pair(data)
    assert lin.D == base.D and lin.names == tuple(f"base.{n}" for n in base.names)  # the anchor is not trained
    w0 = base.flatten()
    torch.testing.assert_close(lin.flatten(), w0, rtol=0, atol=0)
    x = data.x_train[:32]
    torch.testing.assert_close(lin(w0, x), base(w0, x))
    g = torch.Generator().manual_seed(1)
    v = torch.randn(base.D, generator=g)
    gaps = [float((lin(w0 + s * v, x) - base(w0 + s * v, x)).abs().max()) for s in (1e-1, 1e-2)]
    assert 30 < gaps[0] / gaps[1] < 300  # first order: the gap to the network shrinks as the step squared
    assert float((lin(w0 + v, x) - base(w0 + v, x)).abs().max()) > 1e-2  # and it is not the network away from w0


def test_it_is_exactly_affine_in_w_and_is_the_stored_jacobians_function(data):
    base, lin = _pair(data)
    w0, x = base.flatten(), data.x_train[:20]
    v = torch.randn(base.D, generator=torch.Generator().manual_seed(2))
    f0 = lin(w0, x)
    for a in (2.0, -3.0):
        torch.testing.assert_close(lin(w0 + a * v, x) - f0, a * (lin(w0 + v, x) - f0), rtol=1e-4, atol=1e-4)
    J = L.jacobian(base, w0, x)  # (N·C, D), float64
    expected = L.outputs(base, w0, x) + (J @ v.to(torch.float64)).reshape(f0.shape)
    torch.testing.assert_close(lin(w0 + v, x).to(torch.float64), expected, rtol=1e-4, atol=1e-4)


def test_its_squared_loss_is_the_theorys_quadratic(data):
    base, lin = _pair(data)
    w0, x, y = base.flatten(), data.x_train[:30], data.y_train[:30]
    theory = L.linearize(L.jacobian(base, w0, x), L.one_hot(y, data.num_classes), L.outputs(base, w0, x))
    lin.module.to(torch.float64)  # the anchor moves with the module
    assert next(lin.module.anchor.parameters()).dtype == torch.float64
    dw = 0.3 * torch.randn(base.D, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    out = lin(w0.to(torch.float64) + dw, x.to(torch.float64))
    loss = float(((out - L.one_hot(y, data.num_classes)) ** 2).sum()) / (2 * len(y))
    assert loss == pytest.approx(float(theory.quadratic.loss(theory.basis.T @ dw)) + theory.floor, rel=1e-9)


def test_the_one_loop_trains_it_inside_a_random_subspace(data):
    _, lin = _pair(data)
    w0 = lin.flatten()
    sub = Subspace(w0[None].repeat(2, 1), DenseProjection(torch.stack([gaussian_directions(lin.D, 40, s) for s in (1, 2)])))
    before, _ = evaluate(lin, sub.offset, data.x_test, data.y_test, 512)
    res = train_population(lin, [Group(sub, 5e-2, (0, 1))], data, TrainConfig(epochs=4, batch_size=32, lr=1e-2))
    assert res.status == ["FINISHED", "FINISHED"]
    for k in range(2):  # it learns, and only inside member k's 40 directions
        assert res.metrics[k]["test_acc"] > 0.6 > float(before[k])
        basis = torch.linalg.qr(sub.projection.directions[k].T)[0]
        step = res.weights[k] - w0
        torch.testing.assert_close(basis @ (basis.T @ step), step, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(torch.cat([p.reshape(-1) for p in lin.module.anchor.parameters()]), w0, rtol=0, atol=0)  # w0 stays put
