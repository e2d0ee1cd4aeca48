"""A network linearized at w0 under a squared loss is exactly a quadratic: its threshold dimension is
predicted by the cone's statistical dimension and measured exactly by least squares."""
import functools

import pytest
import torch

from benchmark.models import create_model
from subspaces.flat import FlatModel
from subspaces.theory import linearized as L
from subspaces.theory.cones import project, sizes, sublevel_cone
from subspaces.theory.quadratic import crossing, nested_min_loss, success_probability


def _network(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, 1, 16, generator=g), torch.randint(0, 10, (n,), generator=g)
    torch.manual_seed(seed)
    flat = FlatModel.of(create_model("mlp", (1, 16), 10, hidden=[16]))  # D = 442
    w0 = flat.flatten()
    J, f0 = L.jacobian(flat, w0, x, chunk=16), L.outputs(flat, w0, x)
    return flat, x, y, J, f0, L.linearize(J, L.one_hot(y, 10), f0)


def test_the_jacobian_rows_are_the_gradients_of_each_output():
    flat, x, _, J, _, _ = _network(6)
    assert J.shape == (60, flat.D) and J.dtype == torch.float64
    w = flat.flatten().requires_grad_(True)
    out = flat(w, x[2:3])[0, 7]
    (g,) = torch.autograd.grad(out, w)
    torch.testing.assert_close(J[2 * 10 + 7], g.to(torch.float64), rtol=1e-5, atol=1e-6)
    assert next(flat.module.parameters()).dtype == torch.float32  # the module is given back as it was


@pytest.mark.parametrize("n", [60, 30])  # N·C = 600 > D (a floor L_min > 0), and 300 < D (D − r flat directions)
def test_the_rotated_quadratic_is_the_linearized_squared_loss(n):
    flat, _, y, J, f0, lin = _network(n)
    Y = L.one_hot(y, 10)
    assert 0 < lin.rank <= min(n * 10, flat.D)
    assert lin.initial_loss == pytest.approx(float(((Y - f0) ** 2).sum()) / (2 * n), rel=1e-10)
    if n * 10 < flat.D:
        assert lin.floor == pytest.approx(0.0, abs=1e-8) and lin.rank == n * 10
    else:
        assert lin.floor > 0.05
    g = torch.Generator().manual_seed(3)
    for scale in (0.01, 0.3):
        dw = scale * torch.randn(flat.D, generator=g, dtype=torch.float64)
        direct = float(((f0.reshape(-1) + J @ dw - Y.reshape(-1)) ** 2).sum()) / (2 * n)
        assert float(lin.quadratic.loss(lin.basis.T @ dw)) + lin.floor == pytest.approx(direct, rel=1e-9)


@pytest.mark.parametrize("n", [60, 30])
def test_the_predicted_threshold_is_within_two_percent_of_D_of_the_measured_one(n):
    """Measured: the exact best loss of 40 Haar-random subspaces for every d (nested QR); predicted:
    r − δ(C_r). Measured here: within 0.6% of D at every ε (the theory study's tolerance is 5%)."""
    flat, *_, lin = _network(n)
    D = flat.D
    dirs = torch.randn(40, D, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    curves = nested_min_loss(lin.quadratic, dirs) + lin.floor  # (40, D + 1)
    checked = 0
    for fraction in (0.2, 0.3, 0.5, 0.7):
        eps = fraction * lin.initial_loss
        if eps <= lin.floor:
            continue
        measured = crossing(success_probability(curves, torch.tensor([eps], dtype=torch.float64))[0], 0.5)
        cone = sublevel_cone(lin.curved(), eps - lin.floor)
        predicted = lin.rank - sizes(functools.partial(project, cone), lin.rank, 400, 0).statistical_dimension
        assert 0 < measured < D and abs(predicted - measured) < 0.02 * D, (fraction, predicted, measured)
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize("n", [60, 30])
def test_the_curves_on_the_curved_coordinates_are_those_of_all_D(n):
    """min_loss_curves works on the r curved coordinates only (the flat ones cannot lower the loss): the
    same distribution as nested least squares over all D, at a fraction of its cost."""
    flat, *_, lin = _network(n)
    D, r = flat.D, lin.rank
    curves = L.min_loss_curves(lin, 40, seed=5)
    assert curves.shape == (40, D + 1) and curves.dtype == torch.float64
    torch.testing.assert_close(curves[:, 0], torch.full((40,), lin.initial_loss, dtype=torch.float64))
    assert bool((curves[:, r:] == lin.floor).all())  # from d = r on, the subspace spans every curved direction
    half = r // 2  # within each half the subspaces are nested: the best loss never rises with d
    assert bool((curves[:, 1 : half + 1] <= curves[:, :half] + 1e-12).all())
    assert bool((curves[:, half + 2 : r + 1] <= curves[:, half + 1 : r] + 1e-12).all())
    torch.testing.assert_close(L.min_loss_curves(lin, 3, seed=5), curves[:3], rtol=0, atol=0)  # draw i: (seed, i)
    assert not torch.equal(L.min_loss_curves(lin, 3, seed=6), curves[:3])
    full = nested_min_loss(lin.quadratic, torch.randn(40, D, D, generator=torch.Generator().manual_seed(1),
                                                      dtype=torch.float64)) + lin.floor
    for fraction in (0.3, 0.5, 0.7):
        eps = torch.tensor([fraction * lin.initial_loss], dtype=torch.float64)
        if float(eps) <= lin.floor:
            continue
        ours, everything = (crossing(success_probability(c, eps)[0], 0.5) for c in (curves, full))
        assert abs(ours - everything) < 0.01 * D, (fraction, ours, everything)


def test_gradient_flow_reaches_an_accuracy_at_a_loss_between_the_floor_and_the_start():
    _, _, y, J, f0, lin = _network(30)
    f = lin.flow()
    t = torch.logspace(-5, 6, 50, dtype=torch.float64)
    losses = L.flow_loss(f, t)
    assert bool((losses[1:] <= losses[:-1] + 1e-12).all())  # gradient flow never climbs
    assert float(losses[0]) == pytest.approx(lin.initial_loss, rel=1e-3) and float(losses[-1]) == pytest.approx(lin.floor, abs=1e-9)
    # the flow's loss is the linearized network's at w0 + B z(t)
    z = L.flow(f, t[20:21])[0]
    direct = float(((f0.reshape(-1) + J @ (f.basis @ z) - L.one_hot(y, 10).reshape(-1)) ** 2).sum()) / 60
    assert float(losses[20]) == pytest.approx(direct, rel=1e-9)
    losses, accs = L.flow_accuracy(f, J @ f.basis, f0, y)
    eps, acc, best = L.loss_at_accuracy(losses, accs, 0.9)
    assert best == pytest.approx(1.0)  # 30 examples, 442 weights: it fits them
    assert acc >= 0.9 and lin.floor <= eps < lin.initial_loss
    assert float(accs[0]) < 0.5  # it starts near chance
