import dataclasses

import pytest
import torch

from subspaces import (
    CoordinateProjection,
    DenseProjection,
    IdentityProjection,
    Subspace,
    gaussian_directions,
    principal_directions,
    stack,
)
from subspaces.hartley import RandomOrthogonal, hartley
from subspaces.trajectory import completed_basis

D = 300


def _subspaces(K=3, d=20):
    b = torch.randn(K, D)
    idx = torch.stack([torch.randperm(D)[:d] for _ in range(K)])
    dirs = torch.stack([gaussian_directions(D, d, seed=k) for k in range(K)])
    return {
        "identity": Subspace(b, IdentityProjection(K, D)),
        "coordinates": Subspace(b, CoordinateProjection(idx, D)),
        "dense": Subspace(b, DenseProjection(dirs)),
    }


@pytest.mark.parametrize("kind", ["identity", "coordinates", "dense"])
def test_weights_at_zero_are_the_offset(kind):
    s = _subspaces()[kind]
    assert torch.equal(s.weights(s.init_theta()), s.offset)


@pytest.mark.parametrize("kind", ["identity", "coordinates", "dense"])
def test_projection_is_linear_and_matches_its_matrix(kind):
    s = _subspaces()[kind]
    theta = torch.randn(s.K, s.d, dtype=torch.float32)
    A = torch.stack([torch.stack([s.projection(e[None].expand(1, -1).repeat(s.K, 1))[k] for e in torch.eye(s.d)], 1)
                     for k in range(s.K)])  # (K, D, d) built column by column
    expected = torch.einsum("kDd,kd->kD", A, theta)
    torch.testing.assert_close(s.projection(theta), expected, rtol=1e-5, atol=1e-5)


def test_coordinates_change_exactly_d_weights():
    s = _subspaces(K=2, d=17)["coordinates"]
    theta = torch.randn(2, 17) + 5  # nonzero everywhere
    moved = (s.weights(theta) != s.offset).sum(dim=1)
    assert moved.tolist() == [17, 17]


def test_gaussian_directions_are_unit_norm_and_seeded():
    a = gaussian_directions(5000, 40, seed=3)
    assert a.shape == (40, 5000)
    torch.testing.assert_close(a.norm(dim=1), torch.ones(40))
    assert torch.equal(a, gaussian_directions(5000, 40, seed=3))
    assert not torch.equal(a, gaussian_directions(5000, 40, seed=4))


def test_stack_concatenates_members_and_rejects_mixed_kinds():
    subs = _subspaces(K=2)
    both = stack([subs["dense"], subs["dense"]])
    assert (both.K, both.d, both.D) == (4, 20, D)
    theta = torch.randn(4, 20)
    torch.testing.assert_close(both.weights(theta)[2:], subs["dense"].weights(theta[2:]))
    with pytest.raises(ValueError, match="cannot stack"):
        stack([subs["dense"], subs["coordinates"]])


def test_theta_shape_is_checked():
    s = _subspaces()["dense"]
    with pytest.raises(ValueError, match="theta must be"):
        s.weights(torch.zeros(3, 21))


def test_principal_directions_recover_known_directions_and_are_orthonormal():
    g = torch.Generator().manual_seed(0)
    true, _ = torch.linalg.qr(torch.randn(2000, 3, generator=g, dtype=torch.float64))
    # A trajectory that moves along 3 known directions with decreasing scale.
    coeffs = torch.randn(50, 3, generator=g, dtype=torch.float64) * torch.tensor([10.0, 3.0, 1.0], dtype=torch.float64)
    deltas = (coeffs @ true.T).float()
    basis = principal_directions(deltas, d=3)
    assert basis.shape == (2000, 3)
    torch.testing.assert_close(basis.T @ basis, torch.eye(3), atol=1e-5, rtol=0)
    # Same span: projecting the true directions onto the basis keeps them whole.
    overlap = basis.double().T @ true
    torch.testing.assert_close(torch.linalg.svdvals(overlap), torch.ones(3, dtype=torch.float64), atol=1e-4, rtol=0)
    # Ordered by importance: the first direction is the largest-scale one.
    assert abs(float(overlap[0, 0])) > 0.99


def _columns(proj, d: int) -> torch.Tensor:
    """A (D, d) of a K = 1 projection, read column by column (θ = e_i), in float64."""
    probe = dataclasses.replace(proj, members=torch.zeros(d, dtype=torch.long))
    return probe(torch.eye(d)).double().T


def test_principal_directions_stop_at_the_rank_and_completion_is_orthonormal():
    deltas = torch.randn(5, 400)
    basis = principal_directions(deltas, d=10)
    assert basis.shape == (400, 5)
    proj = completed_basis(basis, 12, seed=0)
    assert (proj.K, proj.D, proj.d, proj.r) == (1, 400, 12, 5)
    A = _columns(proj, 12)
    torch.testing.assert_close(A.T @ A, torch.eye(12, dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(A[:, :5], basis.double(), atol=1e-6, rtol=0)  # the principal part is the basis
    # Memory is O(D r): nothing of size D x d is stored.
    assert proj.rows.shape == (1, 5, 400) and proj.completion[0].perm.shape == (395,)


def test_completion_at_scale_is_orthonormal_on_random_probes_and_its_backward_is_the_adjoint():
    g = torch.Generator().manual_seed(0)
    D, r, d = 50_000, 30, 2_000
    basis = principal_directions(torch.randn(r, D, generator=g), d=r)
    proj = completed_basis(basis, d, seed=1)
    # Random probes: ‖A x‖ = ‖x‖ and (A x)·(A y) = x·y for orthonormal columns, checked without forming A.
    x = torch.randn(3, d, generator=g)
    ax = torch.stack([proj(x[i : i + 1])[0] for i in range(3)]).double()
    torch.testing.assert_close(ax @ ax.T, x.double() @ x.double().T, rtol=1e-5, atol=1e-4)
    # A few columns of each part: principal ones equal the basis, completion ones are orthogonal to it.
    cols = torch.tensor([0, r - 1, r, r + 7, d - 1])
    e = torch.zeros(len(cols), d)
    e[torch.arange(len(cols)), cols] = 1
    a = dataclasses.replace(proj, members=torch.zeros(len(cols), dtype=torch.long))(e).double().T
    torch.testing.assert_close(a[:, :2], basis[:, [0, r - 1]].double(), atol=1e-6, rtol=0)
    assert float((basis.double().T @ a[:, 2:]).abs().max()) < 1e-5
    # Autograd's backward is Aᵀ g.
    theta = torch.randn(1, d, generator=g, requires_grad=True)
    grad_out = torch.randn(1, D, generator=g)
    (proj(theta) * grad_out).sum().backward()
    torch.testing.assert_close(theta.grad[0, cols].double(), (grad_out.double() @ a)[0], atol=1e-4, rtol=1e-4)


def test_random_orthogonal_is_orthogonal_for_any_n_and_hartley_is_its_own_inverse(monkeypatch):
    import subspaces.hartley as hartley_module

    monkeypatch.setattr(hartley_module, "ONE_BLOCK", 100)  # so that n = 1001 is split in two blocks
    hartley_module.blocks.cache_clear()  # block sizes are cached per n
    assert hartley_module.blocks(1001) == (900, 101) and hartley_module.blocks(1000) == (1000,)
    for n in (7, 64, 1000, 1001):
        x = torch.randn(4, n, dtype=torch.float64)
        torch.testing.assert_close(hartley(hartley(x)), x)
        R = RandomOrthogonal.draw(n, seed=3, dtype=torch.float64)
        Rm = R(torch.eye(n, dtype=torch.float64)).T  # column j = R e_j
        torch.testing.assert_close(Rm.T @ Rm, torch.eye(n, dtype=torch.float64))
        if n >= 64:
            assert float(Rm.abs().max()) < 0.5  # dense columns: no column is close to an axis
    hartley_module.blocks.cache_clear()  # forget the sizes computed under the patched ONE_BLOCK
    a, b = RandomOrthogonal.draw(50, seed=1), RandomOrthogonal.draw(50, seed=1)
    assert torch.equal(a.signs, b.signs) and torch.equal(a.perm, b.perm)


def test_completed_bases_of_one_seed_share_storage_when_stacked():
    basis = principal_directions(torch.randn(4, 300), d=4)
    one = completed_basis(basis, 20, seed=0)
    other = completed_basis(basis, 20, seed=1)
    both = one.stack([one, other])
    assert both.K == 3 and both.rows.shape[0] == 2 and both.members.tolist() == [0, 0, 1]
    theta = torch.randn(3, 20)
    torch.testing.assert_close(both(theta), torch.cat([one(theta[:1]), one(theta[1:2]), other(theta[2:])]))


def test_centered_pca_ignores_a_constant_offset():
    g = torch.Generator().manual_seed(1)
    direction = torch.nn.functional.normalize(torch.randn(300, generator=g), dim=0)
    offset = torch.nn.functional.normalize(torch.randn(300, generator=g), dim=0) * 100
    deltas = offset + torch.randn(40, 1, generator=g) * direction
    centered = principal_directions(deltas, d=1, centered=True)[:, 0]
    assert abs(float(centered @ direction)) > 0.999
