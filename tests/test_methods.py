import pytest
import torch

import benchmark.methods.ticket as ticket_module
import benchmark.training.prep as prep_module
from benchmark.methods import METHODS, build_subspace, prep_steps
from benchmark.models import create_model
from benchmark.training.loop import TrainConfig
from benchmark.training.prep import init_weights, prepare
from tests.conftest import own_masks

CFG = TrainConfig(epochs=2, batch_size=64, lr=1e-2)
SEEDS = [0, 1]
BURN_IN = 3


@pytest.fixture(scope="module")
def setup():
    from subspaces.flat import FlatModel
    from tests.conftest import blobs

    data = blobs()
    make = lambda: create_model("mlp", data.input_shape, data.num_classes, hidden=[16])
    flat = FlatModel.of(make())
    w0 = torch.stack([init_weights(make, s) for s in SEEDS])
    dims = [flat.D // 4, flat.D // 16]
    needs = set().union(*(m.needs for m in METHODS.values()))
    preps = prepare(SEEDS, w0, flat, data, CFG, needs, own_masks(METHODS, dims), BURN_IN, basis_dim=max(dims))
    return flat, data, preps, dims, w0


def test_every_method_starts_at_its_offset_with_exactly_d_free_scalars(setup):
    flat, _, preps, dims, _ = setup
    for name in METHODS:
        for d in ([flat.D] if name == "full" else dims):
            s = build_subspace(name, preps[0], d)
            assert (s.K, s.D, s.d) == (1, flat.D, d), name
            assert torch.equal(s.weights(s.init_theta()), s.offset), name


def test_offsets_come_from_w0_the_burned_in_or_the_pretrained_weights(setup):
    flat, _, preps, dims, w0 = setup
    p = preps[1]
    assert torch.equal(p.w0, w0[1])
    assert not torch.equal(p.wt, p.w0)  # burn-in moved the weights
    d = dims[0]
    for name, m in METHODS.items():
        if name == "full":
            continue
        s = build_subspace(name, p, d)
        anchor = {"w0": p.w0, "wt": p.wt, "wp": p.wp}[m.anchor]
        if m.family == "pruning":
            kept = s.projection.mask()[0]
            assert torch.equal(s.offset[0][kept], anchor[kept]), name
            assert bool((s.offset[0][~kept] == 0).all()), name
        else:
            assert torch.equal(s.offset[0], anchor), name


def test_wt_is_the_full_space_run_after_burn_in_steps(setup):
    flat, data, preps, _, w0 = setup
    from benchmark.training.loop import Group, train_population
    from benchmark.training.prep import data_seed
    from subspaces import IdentityProjection, Subspace

    seen = {}

    def on_step(step, weights):
        if step == BURN_IN:
            seen["wt"] = weights()

    train_population(flat, [Group(Subspace(w0[:1].clone(), IdentityProjection(1, flat.D)), CFG.lr, (data_seed(0),))],
                     data, CFG, on_step=on_step)
    torch.testing.assert_close(preps[0].wt, seen["wt"][0])


def test_tickets_keep_exactly_d_and_differ_by_rewind_point(setup):
    flat, _, preps, dims, _ = setup
    for d in dims:
        for anchor in ("w0", "wt"):
            idx = preps[0].masks[f"ticket.{anchor}"][d]
            assert idx.numel() == d and idx.unique().numel() == d
    assert preps[0].rounds["ticket"][dims[1]] > preps[0].rounds["ticket"][dims[0]] >= 1


def test_paired_controls_share_their_directions(setup):
    flat, _, preps, dims, _ = setup
    d = dims[0]
    a, b = build_subspace("random_pruning", preps[0], d), build_subspace("random_pruning_t", preps[0], d)
    assert torch.equal(a.projection.index, b.projection.index)
    theta = torch.randn(1, d)
    for projection in ("dense", "sparse", "fastfood"):
        a = build_subspace("random_affine", preps[0], d, projection)
        b = build_subspace("burn_in_affine", preps[0], d, projection)
        assert a.kind == b.kind == projection
        assert torch.equal(a.projection(theta), b.projection(theta))
        other_seed = build_subspace("random_affine", preps[1], d, projection)
        assert not torch.equal(a.projection(theta), other_seed.projection(theta))


def test_lottery_subspace_basis_is_orthonormal_and_starts_with_the_principal_directions(setup):
    _, _, preps, dims, _ = setup
    p = preps[0]
    kinds = set()
    for d in dims + [p.rank + 1, max(p.rank - 1, 1)]:
        s = build_subspace("lottery_subspace", p, d)
        kinds.add(s.kind)
        A = torch.autograd.functional.jacobian(lambda t: s.projection(t[None])[0], torch.zeros(d)).double()
        torch.testing.assert_close(A.T @ A, torch.eye(d, dtype=torch.float64), atol=1e-5, rtol=0)
        r = min(d, p.rank)
        torch.testing.assert_close(A[:, :r], p.basis[:, :r].double(), atol=1e-6, rtol=0)
    # d <= r: a prefix of the stored basis; d > r: the basis completed implicitly, never a D x d matrix.
    assert kinds == {"dense", "completed_basis"}


def test_prep_steps_count_the_full_space_training_each_method_needed(setup):
    _, _, preps, dims, _ = setup
    p, d = preps[0], dims[0]
    assert prep_steps("random_affine", p, d) == prep_steps("random_pruning", p, d) == 0
    assert prep_steps("burn_in_affine", p, d) == prep_steps("random_pruning_t", p, d) == BURN_IN
    assert prep_steps("lottery_subspace", p, d) == p.full_steps
    assert prep_steps("lottery_ticket", p, d) == p.rounds["ticket"][d] * p.full_steps


def test_preparation_trains_the_full_space_run_once_for_all_seeds(monkeypatch):
    from subspaces.flat import FlatModel
    from tests.conftest import blobs

    data = blobs()
    make = lambda: create_model("mlp", data.input_shape, data.num_classes, hidden=[8])
    flat = FlatModel.of(make())
    w0 = torch.stack([init_weights(make, s) for s in SEEDS])
    calls = []
    real = prep_module.train_population

    def counting(flat, groups, *a, **k):
        calls.append([(g.subspace.kind, g.subspace.K) for g in groups])
        return real(flat, groups, *a, **k)

    monkeypatch.setattr(prep_module, "train_population", counting)
    monkeypatch.setattr(ticket_module, "train_population", counting)
    needs = {"wt", "full_run", "imp"}
    tickets = lambda d: own_masks(["lottery_ticket", "lottery_ticket_t"], [d])
    prepare(SEEDS, w0, flat, data, CFG, needs, tickets(flat.D // 2), BURN_IN, basis_dim=10, imp_fraction=0.5)
    # One full-space run with one member per seed; then one IMP retraining round for both rewind points.
    assert calls == [[("identity", len(SEEDS))]]
    calls.clear()
    prepare(SEEDS, w0, flat, data, CFG, needs, tickets(flat.D // 4), BURN_IN, basis_dim=10, imp_fraction=0.5)
    assert calls == [[("identity", len(SEEDS))], [("coordinates", 2 * len(SEEDS))]]


def test_lottery_subspace_without_completion_fails_clearly_when_d_exceeds_the_trajectory():
    from benchmark.methods import MemberError
    from subspaces.flat import FlatModel
    from tests.conftest import blobs

    data = blobs()
    make = lambda: create_model("mlp", data.input_shape, data.num_classes, hidden=[16])
    flat = FlatModel.of(make())
    w0 = torch.stack([init_weights(make, 0)])
    steps = CFG.epochs * 4  # 256 training points at batch 64
    for complete in (False, True):
        p = prepare([0], w0, flat, data, CFG, {"full_run"}, {}, 0, basis_dim=steps + 5,
                    trajectory_complete=complete)[0]
        assert p.rank == steps
        if complete:
            s = build_subspace("lottery_subspace", p, steps + 5)
            A = torch.autograd.functional.jacobian(lambda t: s.projection(t[None])[0], torch.zeros(steps + 5))
            torch.testing.assert_close(A.T @ A, torch.eye(steps + 5), atol=1e-5, rtol=0)
        else:
            with pytest.raises(MemberError, match=f"trajectory spans only {steps} directions"):
                build_subspace("lottery_subspace", p, steps + 1)


def test_independent_trajectory_is_another_run_whose_endpoint_the_subspace_does_not_contain():
    """lottery_subspace_indep: principal directions of a run from the same w0 under another data order.
    The reference's subspace holds its own endpoint w_T - w0 exactly; the independent one does not."""
    from benchmark.methods import principal_dims
    from subspaces.flat import FlatModel
    from tests.conftest import blobs

    data = blobs()
    make = lambda: create_model("mlp", data.input_shape, data.num_classes, hidden=[16])
    flat = FlatModel.of(make())
    w0 = torch.stack([init_weights(make, 0)])
    steps = CFG.epochs * 4
    p = prepare([0], w0, flat, data, CFG, {"full_run", "indep_run"}, {}, 0, basis_dim=steps)[0]
    assert p.rank == p.indep_rank == steps
    ref, ind = build_subspace("lottery_subspace", p, steps), build_subspace("lottery_subspace_indep", p, steps)
    rows = ind.projection.directions[0]
    torch.testing.assert_close(rows @ rows.T, torch.eye(steps), atol=1e-5, rtol=0)
    alone = prepare([0], w0, flat, data, CFG, {"full_run"}, {}, 0, basis_dim=steps)[0]
    torch.testing.assert_close(alone.basis, p.basis)  # batching the independent run changes nothing
    from benchmark.training.loop import Group, train_population
    from benchmark.training.prep import data_seed
    from subspaces import IdentityProjection, Subspace

    end = train_population(flat, [Group(Subspace(w0.clone(), IdentityProjection(1, flat.D)), CFG.lr, (data_seed(0),))],
                           data, CFG).weights[0] - w0[0]
    residual = lambda r: float((end - r.T @ (r @ end)).norm() / end.norm())
    assert residual(ref.projection.directions[0]) < 1e-3
    assert residual(rows) > 0.05
    assert principal_dims("lottery_subspace_indep", p, steps) == steps
    assert principal_dims("random_affine", p, steps) is None
    assert prep_steps("lottery_subspace_indep", p, steps) == p.full_steps


def test_principal_dims_counts_the_trajectory_part_of_a_completed_basis(setup):
    flat, _, preps, dims, _ = setup
    from benchmark.methods import principal_dims

    p = preps[0]
    assert p.rank < dims[0]  # the fixture's trajectory is shorter than the largest d: completed
    assert principal_dims("lottery_subspace", p, dims[0]) == p.rank
    assert principal_dims("lottery_subspace_t", p, 3) == 3


def _per_layer(index, flat):
    return [int(((index >= sl.start) & (index < sl.stop)).sum()) for sl in flat.slices]


def test_layer_shuffled_controls_keep_the_per_layer_counts_of_their_mask_exactly(setup):
    flat, _, preps, dims, _ = setup
    shuffled = [m for m in METHODS if METHODS[m].shuffled]
    assert {"lottery_ticket_shuffled", "snip_shuffled", "grasp_shuffled", "synflow_shuffled",
            "magnitude_init_shuffled"} <= set(shuffled)
    for name in shuffled:
        base = name.removesuffix("_shuffled")
        for d in dims:
            a, b = build_subspace(base, preps[0], d), build_subspace(name, preps[0], d)
            assert _per_layer(a.projection.index[0], flat) == _per_layer(b.projection.index[0], flat), name
            assert not torch.equal(a.projection.index, b.projection.index), name


def test_pruning_at_init_methods_choose_different_masks(setup):
    flat, _, preps, dims, _ = setup
    d = dims[0]
    kept = {m: set(build_subspace(m, preps[0], d).projection.index[0].tolist())
            for m in ("snip", "grasp", "synflow", "magnitude_init", "erk_random", "random_pruning")}
    jaccard = lambda a, b: len(kept[a] & kept[b]) / len(kept[a] | kept[b])
    assert jaccard("snip", "magnitude_init") < 0.9
    assert jaccard("grasp", "snip") < 0.9 and jaccard("synflow", "magnitude_init") < 0.9
    # at w_t the scores read the burned-in weights: another mask
    assert not torch.equal(build_subspace("snip_t", preps[0], d).projection.index,
                           build_subspace("snip", preps[0], d).projection.index)


def test_pruning_at_init_costs_no_training_but_its_anchor(setup):
    _, _, preps, dims, _ = setup
    p, d = preps[0], dims[0]
    assert prep_steps("snip", p, d) == prep_steps("synflow", p, d) == prep_steps("erk_random", p, d) == 0
    assert prep_steps("snip_t", p, d) == prep_steps("magnitude_t", p, d) == BURN_IN
    assert prep_steps("lottery_ticket_shuffled", p, d) == prep_steps("lottery_ticket", p, d)


def test_a_burn_in_past_the_run_is_fine_when_no_method_uses_w_t():
    """`methods=[full,lottery_subspace] epochs=1` once died: burn_in_steps > the run, though nothing needed w_t."""
    from subspaces.flat import FlatModel
    from tests.conftest import blobs

    data = blobs()
    make = lambda: create_model("mlp", data.input_shape, data.num_classes, hidden=[8])
    flat = FlatModel.of(make())
    w0 = torch.stack([init_weights(make, 0)])
    p = prepare([0], w0, flat, data, CFG, {"full_run"}, {}, 10_000, basis_dim=4)[0]
    assert p.wt is None and p.basis.shape == (flat.D, 4)
    with pytest.raises(ValueError, match="burn_in_steps=10000 exceeds the full-space run"):
        prepare([0], w0, flat, data, CFG, {"full_run", "wt"}, {}, 10_000, basis_dim=4)


def test_a_materialized_completion_is_the_same_subspace_as_the_implicit_one(setup):
    """Up to d = 2 r the completed basis is cheaper as stored rows; beyond it, implicit. Same A either way."""
    import dataclasses

    flat, _, preps, _, _ = setup
    p = preps[0]
    r = p.rank
    assert 1 <= r and 2 * r + 1 < flat.D
    stored, implicit = p.completed("reference", r + 2), p.completed("reference", 2 * r + 1)
    assert (stored.kind, implicit.kind) == ("dense", "completed_basis")
    theta = torch.randn(1, r + 2)
    torch.testing.assert_close(stored(theta), dataclasses.replace(implicit, dim=r + 2)(theta), atol=1e-5, rtol=1e-5)
    # Made once: every candidate of the seed gets the same storage, so a population streams it once.
    assert p.completed("reference", r + 2).directions.data_ptr() == stored.directions.data_ptr()
