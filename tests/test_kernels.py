"""Projection kernels against their explicitly materialized matrices."""
import pytest
import torch

from subspaces import (
    RANDOM_PROJECTIONS,
    DenseProjection,
    Subspace,
    fastfood,
    gaussian_directions,
    gaussian_on_the_fly,
    sparse_random,
    stack,
)
from subspaces.hadamard import fwht, hadamard_matrix

D, d = 700, 40

BUILDERS = {
    "dense": lambda D, d, seed, dtype=torch.float32: DenseProjection(gaussian_directions(D, d, seed, dtype)[None]),
    "dense_on_the_fly": lambda D, d, seed, dtype=torch.float32: gaussian_on_the_fly(D, d, seed, dtype),
    "sparse": lambda D, d, seed, dtype=torch.float32: sparse_random(D, d, seed, dtype=dtype),
    "fastfood": lambda D, d, seed, dtype=torch.float32: fastfood(D, d, seed, dtype=dtype),
}


def materialize(p) -> torch.Tensor:
    """A as (K, D, d), column by column: A e_j."""
    eye = torch.eye(p.d, dtype=torch.float64)
    with torch.no_grad():
        cols = [p(eye[j].expand(p.K, -1).to(torch.float64 if _dtype(p) == torch.float64 else torch.float32))
                for j in range(p.d)]
    return torch.stack(cols, dim=2).double()


def _dtype(p):
    for name in ("directions", "values", "G", "norms"):
        if hasattr(p, name):
            return getattr(p, name).dtype
    return torch.float32


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_forward_equals_the_matrix_and_the_adjoint_identity_holds(kind):
    p = BUILDERS[kind](D, d, 3, torch.float64)
    A = materialize(p)
    theta = torch.randn(1, d, dtype=torch.float64)
    torch.testing.assert_close(p(theta), torch.einsum("kDd,kd->kD", A, theta))
    g = torch.randn(1, D, dtype=torch.float64, requires_grad=False)
    th = theta.clone().requires_grad_()
    (p(th) * g).sum().backward()  # <Aθ, g> = <θ, Aᵀg>: the backward is the adjoint
    torch.testing.assert_close(th.grad, torch.einsum("kDd,kD->kd", A, g))


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_columns_have_unit_norm(kind):
    A = materialize(BUILDERS[kind](5000, 24, 1))
    norms = A.norm(dim=1)
    assert float((norms - 1).abs().max()) < 0.05


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_same_seed_same_matrix_other_seed_other_matrix(kind):
    a, b, c = (materialize(BUILDERS[kind](D, 16, s)) for s in (7, 7, 8))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_batched_equals_member_by_member(kind):
    members = [BUILDERS[kind](D, d, s) for s in range(3)]
    batched = members[0].stack(members[1:])
    theta = torch.randn(3, d)
    expected = torch.cat([m(theta[k : k + 1]) for k, m in enumerate(members)])
    torch.testing.assert_close(batched(theta), expected, rtol=1e-5, atol=1e-6)
    sub = stack([Subspace(torch.zeros(1, D), m) for m in members])
    torch.testing.assert_close(sub.weights(theta), expected, rtol=1e-5, atol=1e-6)


def test_dense_members_sharing_a_matrix_hold_it_once_and_compute_the_same():
    """Candidate lrs of one lottery subspace are views of one basis: stacked, the matrix is kept once."""
    basis = gaussian_directions(D, 3 * d, 5)
    views = [DenseProjection(basis[:d][None]), DenseProjection(basis[d : 2 * d][None])]
    members = [views[0], views[1], views[0], DenseProjection(basis[:d].clone()[None]), views[1]]
    batched = members[0].stack(members[1:])
    assert batched.directions.shape == (3, d, D) and batched.members.tolist() == [0, 1, 0, 2, 1]
    assert batched.K == 5 and batched.matrix().shape == (5, D, d)
    theta = torch.randn(5, d, requires_grad=True)
    out = batched(theta)
    expected = torch.cat([m(theta[k : k + 1]) for k, m in enumerate(members)])
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    g = torch.randn(5, D)
    (grad,) = torch.autograd.grad((out * g).sum(), theta)
    (ref,) = torch.autograd.grad((expected * g).sum(), theta)
    torch.testing.assert_close(grad, ref, rtol=1e-5, atol=1e-5)
    # With the (D, d) layout at hand too, the forward reads it; numbers and gradients are the same.
    with_cols = [DenseProjection(m.directions, columns=m.directions.transpose(1, 2)) for m in members]
    both = with_cols[0].stack(with_cols[1:])
    assert both.columns.shape == (3, D, d)
    out2 = both(theta)
    torch.testing.assert_close(out2, expected, rtol=1e-5, atol=1e-6)
    (grad2,) = torch.autograd.grad((out2 * g).sum(), theta)
    torch.testing.assert_close(grad2, ref, rtol=1e-5, atol=1e-5)
    # Stacking a stacked projection with itself keeps the sharing.
    again = batched.stack([batched])
    assert again.directions.shape[0] == 3 and again.members.tolist() == [0, 1, 0, 2, 1] * 2


def test_on_the_fly_dense_is_the_stored_dense_matrix():
    stored = BUILDERS["dense"](D, d, 11)
    otf = BUILDERS["dense_on_the_fly"](D, d, 11)
    torch.testing.assert_close(materialize(otf), materialize(stored), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["dense_on_the_fly", "fastfood"])
def test_custom_backward_passes_gradcheck(kind):
    p = BUILDERS[kind](300, 12, 2, torch.float64)
    theta = torch.randn(1, 12, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(p, (theta,))


@pytest.mark.parametrize("L", [1, 2, 4, 64, 128, 4096])
def test_fwht_matches_the_hadamard_matrix(L):
    x = torch.randn(3, 2, L, dtype=torch.float64)
    H = hadamard_matrix(L, torch.float64, "cpu")
    torch.testing.assert_close(fwht(x), x @ H)
    torch.testing.assert_close(fwht(fwht(x)), L * x)


def test_fastfood_single_block_when_d_is_large():
    p = fastfood(1000, 600, 0)
    assert p.B.shape[1:] == (1, 1024)  # one transform covering all D, as in Li et al.
    small = fastfood(100_000, 10, 0)
    assert small.B.shape[2] == 256 and small.B.shape[1] == -(-100_000 // 256)


def test_wide_fastfood_maps_onto_all_of_a_small_part():
    """d > D (SAID's map onto a layer smaller than θ'): one transform of L >= d, its first D rows; the
    forward is the matrix, the backward its adjoint, rank D, columns unit norm in expectation."""
    p = fastfood(32, 300, 2, dtype=torch.float64)
    assert p.B.shape[1:] == (1, 512)
    A = materialize(p)[0]  # (32, 300)
    theta = torch.randn(1, 300, dtype=torch.float64)
    torch.testing.assert_close(p(theta), theta @ A.T)
    g = torch.randn(1, 32, dtype=torch.float64)
    torch.testing.assert_close(p.adjoint(g), g @ A)
    assert int(torch.linalg.matrix_rank(A)) == 32
    assert abs(float((A ** 2).sum(0).mean()) - 1) < 0.1


def test_compiled_and_pure_torch_transforms_agree():
    from subspaces import native
    from subspaces.hadamard import fwht_gemm

    if not native.available():
        pytest.skip("no C compiler here: the pure-torch transform is the one in use")
    for L in (1, 2, 4, 8, 16, 512, 8192):
        x = torch.randn(5, L)
        torch.testing.assert_close(fwht(x), fwht_gemm(x), rtol=1e-4, atol=1e-3)
    y = torch.randn(3, 64)
    before = y.clone()
    fwht(y)
    assert torch.equal(y, before)  # not in place unless asked


@pytest.mark.parametrize("name", list(RANDOM_PROJECTIONS))
def test_every_registered_projection_is_linear_with_unit_norm_columns(name):
    """A kernel added to the registry is tested here without editing a list. Columns are unit-norm
    (Fastfood's in expectation: within a few percent at D = 700)."""
    p = RANDOM_PROJECTIONS[name](D, d, 7)
    assert (p.K, p.D, p.d) == (1, D, d)
    A = materialize(p)[0]
    torch.testing.assert_close(A.norm(dim=0), torch.ones(d, dtype=A.dtype), atol=0.1 if name == "fastfood" else 1e-4,
                               rtol=0)
    theta = torch.randn(1, d)
    with torch.no_grad():
        torch.testing.assert_close(p(theta)[0].double(), A @ theta[0].double(), atol=1e-4, rtol=1e-4)
