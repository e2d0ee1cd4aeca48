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
from subspaces.trajectory import complete_basis

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


def test_principal_directions_stop_at_the_rank_and_completion_is_orthonormal():
    deltas = torch.randn(5, 400)
    basis = principal_directions(deltas, d=10)
    assert basis.shape == (400, 5)
    full = complete_basis(basis, 12, seed=0)
    assert full.shape == (400, 12)
    torch.testing.assert_close(full.T @ full, torch.eye(12), atol=1e-5, rtol=0)
    torch.testing.assert_close(full[:, :5], basis)


def test_centered_pca_ignores_a_constant_offset():
    g = torch.Generator().manual_seed(1)
    direction = torch.nn.functional.normalize(torch.randn(300, generator=g), dim=0)
    offset = torch.nn.functional.normalize(torch.randn(300, generator=g), dim=0) * 100
    deltas = offset + torch.randn(40, 1, generator=g) * direction
    centered = principal_directions(deltas, d=1, centered=True)[:, 0]
    assert abs(float(centered @ direction)) > 0.999
