"""Stochastic Lanczos quadrature: the linearized quadratic of a network from matrix-free products has the
spectrum, the loss and the threshold dimension of the exact one (linearized.linearize)."""
import functools

import pytest
import torch

from benchmark.models import create_model
from subspaces.flat import FlatModel
from subspaces.theory import linearized as L
from subspaces.theory import slq
from subspaces.theory.cones import project, sizes, sublevel_cone


def _network(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, 1, 16, generator=g), torch.randint(0, 10, (n,), generator=g)
    torch.manual_seed(seed)
    flat = FlatModel.of(create_model("mlp", (1, 16), 10, hidden=[32]))  # D = 874
    return flat, flat.flatten(), x, L.one_hot(y, 10)


def test_the_products_are_J_and_its_transpose():
    flat, w0, x, _ = _network(12)
    J = L.jacobian(flat, w0, x)
    g = torch.Generator().manual_seed(1)
    v, u = torch.randn(flat.D, generator=g, dtype=torch.float64), torch.randn(12, 10, generator=g, dtype=torch.float64)
    with L._float64(flat):
        p = slq.products(flat, w0, x, chunk=5)  # three chunks, the last one short
        torch.testing.assert_close(p.jvp(v).reshape(-1), J @ v)
        torch.testing.assert_close(p.vjp(u), J.T @ u.reshape(-1))
        torch.testing.assert_close(p.gauss_newton(v), J.T @ (J @ v) / 12)
    assert next(flat.module.parameters()).dtype == torch.float32


def test_lanczos_quadrature_is_exact_on_a_small_matrix_and_integrates_moments():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(30, 30, generator=g, dtype=torch.float64)
    A = A @ A.T
    v = torch.randn(30, generator=g, dtype=torch.float64)
    nodes, weights = slq.lanczos(lambda q: A @ q, v, 50)  # the Krylov space closes at 30
    assert len(nodes) == 30 and float(weights.sum()) == pytest.approx(1.0, abs=1e-12)
    torch.testing.assert_close(nodes.sort().values, torch.linalg.eigvalsh(A), rtol=1e-8, atol=1e-8)
    nodes, weights = slq.lanczos(lambda q: A @ q, v, 6)  # 6 nodes: exact up to degree 11
    q = v / v.norm()
    for k in (1, 5, 11):
        exact = float(q @ torch.linalg.matrix_power(A, k) @ q)
        assert float((weights * nodes**k).sum()) == pytest.approx(exact, rel=1e-6)


@pytest.mark.parametrize("n", [120, 40])  # N·C = 1,200 > D (a floor), and 400 < D (flat directions)
def test_the_estimated_quadratic_has_the_exact_loss_floor_and_threshold(n):
    """Measured (120 Lanczos steps, 8 probes): L(w0) to rounding, the floor within 0.1% of L(w0), the
    predicted d(ε) within 1.2% of D of the exact route's at every ε (on digits fc-25x2, D = 2,535: within
    0.5%). With 60 steps the floor is 6% high when N·C > D: near it the prediction is 3% of D off."""
    flat, w0, x, Y = _network(n)
    exact = L.linearize(L.jacobian(flat, w0, x), Y, L.outputs(flat, w0, x))
    est, spectrum = slq.estimate(flat, w0, x, Y, probes=8, steps=120)
    assert est.D == flat.D and est.basis is None
    assert float(spectrum.density[1].sum()) == pytest.approx(flat.D, rel=0.02)
    assert est.initial_loss == pytest.approx(exact.initial_loss, rel=1e-9)
    assert est.floor == pytest.approx(exact.floor, abs=0.005 * exact.initial_loss)
    assert est.rank <= exact.rank * 1.05
    assert float(est.quadratic.eigenvalues[0]) == pytest.approx(float(exact.quadratic.eigenvalues[0]), rel=1e-6)

    def predicted(lin, fraction):
        cone = sublevel_cone(lin.curved(), fraction * lin.initial_loss - lin.floor)
        return lin.rank - sizes(functools.partial(project, cone), lin.rank, 200, 0).statistical_dimension

    for fraction in (0.2, 0.4, 0.6, 0.8):
        assert abs(predicted(est, fraction) - predicted(exact, fraction)) <= 0.015 * flat.D


def test_the_krylov_flow_follows_the_exact_gradient_flow():
    """Loss and evaluation outputs along the flow from 60 Krylov vectors against the eigenbasis's closed form."""
    flat, w0, x, Y = _network(40)
    J, f0 = L.jacobian(flat, w0, x), L.outputs(flat, w0, x)
    exact = L.linearize(J, Y, f0).flow()
    with L._float64(flat):
        krylov = slq.krylov_flow(slq.products(flat, w0, x), Y, f0, exact.floor, steps=60)
    assert krylov.basis.shape[0] == flat.D and krylov.basis.shape[1] <= 60
    torch.testing.assert_close(krylov.basis.T @ krylov.basis, torch.eye(krylov.basis.shape[1], dtype=torch.float64))
    lam_max = float(exact.rates.max())
    t = torch.tensor([0.0, 0.3, 3.0, 30.0], dtype=torch.float64) / lam_max
    torch.testing.assert_close(L.flow_loss(krylov, t), L.flow_loss(exact, t), rtol=1e-3, atol=1e-6)
    dw_k = L.flow(krylov, t) @ krylov.basis.T
    dw_e = L.flow(exact, t) @ exact.basis.T
    assert float((dw_k - dw_e).norm() / dw_e.norm()) < 1e-2
