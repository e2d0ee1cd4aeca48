"""Packing tasks into superposed random subspaces: the projection, the tasks, the curvature estimates,
the regimes, and `python -m benchmark pack`."""
import math

import pytest
import torch
from torch import nn

from benchmark.data.tasks import Permuted, mixture, permutations, task_buffers
from subspaces import FlatModel, fastfood
from subspaces.curvature import hutchinson_trace, quadratic_change
from subspaces.superposed import SuperposedProjection, superpose
from tests.conftest import blobs


def _tiny_settings(**kw):
    from benchmark.studies.packing.experiment import PackSettings

    base = dict(model_options=(("hidden", (16,)),), dims=(24,), max_tasks=4, epochs=2, lr_grid=(0.3, 1.0),
                reference_lr_grid=(1e-2,), burn_in_steps=3, probes=4, predicted_tasks=2)
    base.update(kw)
    return PackSettings(**base)


# --- the superposed projection ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["own", "sum"])
def test_superposed_members_all_sit_at_the_sum(mode):
    inner = fastfood(300, 7, 1).stack([fastfood(300, 7, s) for s in (2, 3)])
    theta = torch.randn(3, 7)
    out = SuperposedProjection(inner, mode)(theta)
    parts = inner(theta)
    assert out.shape == (3, 300)
    for k in range(3):
        torch.testing.assert_close(out[k], parts.sum(0), atol=1e-5, rtol=0)


def test_own_mode_moves_each_theta_by_its_own_loss_only_and_sum_mode_by_all():
    inner = fastfood(200, 5, 1).stack([fastfood(200, 5, 2)])
    targets = torch.randn(2, 200)

    def grads(mode):
        theta = torch.randn(2, 5, generator=torch.Generator().manual_seed(0)).requires_grad_()
        w = SuperposedProjection(inner, mode)(theta)
        losses = ((w - targets) ** 2).sum(1)  # member k's loss L_k(w)
        g0 = torch.autograd.grad(losses[0], theta, retain_graph=True)[0]
        g_all = torch.autograd.grad(losses.sum(), theta)[0]
        return g0, g_all

    g0, g_all = grads("own")
    assert torch.count_nonzero(g0[1]) == 0 and torch.count_nonzero(g0[0]) > 0  # L_0 reaches θ_0 only
    g0_sum, g_all_sum = grads("sum")
    assert torch.count_nonzero(g0_sum[1]) > 0  # the summed loss reaches every θ
    assert not torch.allclose(g_all[0], g_all_sum[0])  # the two modes train differently


def test_superposed_projection_refuses_to_stack_and_bad_modes():
    p = SuperposedProjection(fastfood(50, 3, 0))
    with pytest.raises(ValueError, match="do not stack"):
        p.stack([p])
    with pytest.raises(ValueError, match="unknown superposition mode 'mean'; accepted: own, sum"):
        SuperposedProjection(fastfood(50, 3, 0), "mean")


# --- tasks ----------------------------------------------------------------------------------------------


def test_permutations_task0_identity_others_distinct_and_seeded():
    p = permutations(64, 5, seed=3)
    assert p.shape == (5, 64) and torch.equal(p[0], torch.arange(64))
    assert all(torch.equal(torch.sort(row).values, torch.arange(64)) for row in p)
    assert len({tuple(row.tolist()) for row in p}) == 5
    assert torch.equal(p, permutations(64, 5, seed=3)) and not torch.equal(p, permutations(64, 5, seed=4))
    assert torch.equal(permutations(64, 3, seed=3), p[:3])  # more tasks never change the first ones


def test_permuted_model_is_the_net_under_identity_and_adds_no_parameters():
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 4))
    model = Permuted(net, (1, 12))
    x = torch.randn(5, 1, 12)
    assert torch.equal(model(x), net(x))
    assert FlatModel.of(model).D == FlatModel.of(net).D == 52
    model.perm.copy_(torch.arange(11, -1, -1))
    torch.testing.assert_close(model(x), net(x.flip(-1)))


def test_task_buffers_put_each_member_on_its_task_under_vmap():
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    flat = FlatModel.of(Permuted(net, (1, 12)))
    perms = permutations(12, 3, seed=0)
    W = flat.flatten()[None].repeat(3, 1)
    x = torch.randn(6, 1, 12)
    out = flat.batched(W, x, True, task_buffers(flat.init_buffers(3), perms))
    for k in range(3):
        torch.testing.assert_close(out[k], net(x.flatten(1)[:, perms[k]]))


def test_mixture_permutes_each_example_by_one_of_the_tasks():
    data = blobs(n_train=200, dim=12)
    perms = permutations(12, 3, seed=1)
    mixed = mixture(data, perms, seed=0)
    x, mx = data.x_train.flatten(1), mixed.x_train.flatten(1)
    which = [[k for k in range(3) if torch.equal(mx[n], x[n, perms[k]])] for n in range(200)]
    assert all(which_n for which_n in which)
    assert {w[0] for w in which} == {0, 1, 2}
    assert torch.equal(mixed.y_train, data.y_train)


# --- curvature -------------------------------------------------------------------------------------------


def _tiny_loss():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    flat = FlatModel.of(net)
    x, y = torch.randn(32, 3), torch.randint(0, 2, (32,))
    loss = lambda w: nn.functional.cross_entropy(flat(w, x), y)
    return loss, flat.flatten()


def test_hutchinson_matches_the_exact_hessian_trace_within_three_standard_errors():
    loss, w = _tiny_loss()
    exact = float(torch.autograd.functional.hessian(loss, w).diagonal().sum())
    estimate, se = hutchinson_trace(loss, w, probes=200, seed=0)
    assert se > 0
    assert abs(estimate - exact) <= 3 * se, (estimate, exact, se)
    assert hutchinson_trace(loss, w, probes=20, seed=1) == hutchinson_trace(loss, w, probes=20, seed=1)


def test_quadratic_model_predicts_the_change_of_a_tiny_displacement():
    loss, w = _tiny_loss()
    delta = 1e-2 * torch.randn(w.shape, generator=torch.Generator().manual_seed(1))
    first, second = quadratic_change(loss, w, delta)
    measured = float(loss(w + delta) - loss(w))
    assert abs(first) > 1e-4  # the gradient term is not small at a generic point
    assert abs((first + second) - measured) < 0.02 * abs(measured) + 1e-6
    # the quadratic term is exact for a quadratic loss
    A = torch.randn(6, 6, generator=torch.Generator().manual_seed(2))
    quad = lambda v: 0.5 * v @ (A @ A.T) @ v + v.sum()
    v0, dv = torch.randn(6), torch.randn(6)
    f, s = quadratic_change(quad, v0, dv)
    torch.testing.assert_close(torch.tensor(f + s), quad(v0 + dv) - quad(v0), rtol=1e-4, atol=1e-4)


# --- the study ---------------------------------------------------------------------------------------------


def test_task_counts_double_up_to_k_d_about_D():
    from benchmark.studies.packing.experiment import task_counts

    assert task_counts(150, 9610, None) == [1, 2, 4, 8, 16, 32, 64]
    assert task_counts(600, 9610, None) == [1, 2, 4, 8, 16]
    assert task_counts(100, 9610, None) == [1, 2, 4, 8, 16, 32, 64, 96]  # K·d = 9,600 ≈ D
    assert task_counts(100, 9610, 5) == [1, 2, 4, 5]


def test_capacity_is_the_largest_k_up_to_which_every_task_keeps_90_percent():
    from benchmark.studies.packing.experiment import Cell, capacity

    cell = lambda K, accs: Cell("apart", 10, "w0", K, 1.0, accs, accs, [1.0] * len(accs))
    assert capacity([cell(1, [1.0]), cell(2, [0.95, 0.91]), cell(4, [0.95, 0.95, 0.95, 0.5])]) == 2
    assert capacity([cell(1, [1.0]), cell(2, [0.5, 0.95]), cell(4, [0.95] * 4)]) == 1  # not past a failure
    assert capacity([cell(2, [0.95, 0.5]), cell(1, [1.0])]) == 1


@pytest.fixture(scope="module")
def digits_context():
    from benchmark.studies.packing.experiment import make_context

    return make_context(_tiny_settings())


def test_superposed_weights_are_w0_plus_the_sum_of_each_tasks_projection(digits_context):
    from benchmark.studies.packing.experiment import solo

    ctx = digits_context
    s = solo(ctx, [(24, "w0", 3)])[0]
    w = superpose(ctx.anchors["w0"], s.parts[0])
    expected = ctx.anchors["w0"].clone()
    for i in range(3):  # each task's A_i θ_i from its own, unstacked projection, added in task order
        expected += ctx.projection(24, i)(s.theta[0, i][None])[0]
    assert torch.equal(w, expected)
    assert torch.equal(superpose(ctx.anchors["w0"], s.parts[0, :1]), ctx.anchors["w0"] + s.parts[0, 0])


def test_population_of_tasks_equals_tasks_trained_one_by_one(digits_context):
    from benchmark.studies.packing.experiment import solo

    ctx = digits_context
    together = solo(ctx, [(24, "w0", 3)])[0]
    for i in range(3):
        alone = _solo_of_task(ctx, 24, i)
        torch.testing.assert_close(together.parts[:, i], alone, atol=2e-4, rtol=1e-4)


def _solo_of_task(ctx, d, task):
    """Task `task` alone (its own population), at each lr: A θ (L, D)."""
    from benchmark.studies.packing.experiment import task_data_seed
    from benchmark.training.loop import Group, train_population
    from subspaces import Subspace

    out = []
    for lr in ctx.settings.lr_grid:
        proj = ctx.projection(d, task)
        g = Group(Subspace(ctx.anchors["w0"][None].clone(), proj), lr, (task_data_seed(ctx.settings.seed, task),))
        r = train_population(ctx.flat, [g], ctx.data, ctx.train, buffers=ctx.buffers([task]))
        out.append(proj(r.thetas[0])[0])
    return torch.stack(out)


def test_pack_of_one_reproduces_the_plain_random_affine_member_of_run(tmp_path):
    """pack's K = 1 cell is `run`'s random_affine member: same w0, A, data order, optimizer and lr."""
    from benchmark.config.build import build_config
    from benchmark.config.compose import compose
    from benchmark.runner.run import run
    from benchmark.studies.packing.experiment import make_context, solo

    D = 64 * 16 + 16 + 16 * 10 + 10
    d = 24
    raw = compose(["dataset=digits", "model=mlp", "model.hidden=[16]", "methods=[full,random_affine]",
                   f"ratios=[1,{D / d}]", "seeds=[0]", "epochs=2", "lr_grid=[1]", "subspace_lr=1.0",
                   "quantize_bits=[]", f"tracking.uri=sqlite:///{tmp_path}/m.db", "extension.enabled=false"])
    result = run(build_config(raw), out=open("/dev/null", "w"))
    member = next(o for o in result["outcomes"] if o.cell.method == "random_affine")
    assert member.cell.d == d
    ctx = make_context(_tiny_settings(lr_grid=(1.0,), max_tasks=1))
    s = solo(ctx, [(d, "w0", 1)])[0]
    assert float(s.test[0, 0]) == pytest.approx(member.metrics["test_acc"], abs=1e-9)
    assert float(s.val[0, 0]) == pytest.approx(member.metrics["val_acc"], abs=1e-9)


def test_pack_cli_writes_tables_plots_and_mlflow_runs(tmp_path):
    from mlflow.tracking import MlflowClient

    from benchmark.__main__ import main

    uri = f"sqlite:///{tmp_path}/m.db"
    out = tmp_path / "pk"
    rc = main(["pack", "--model-option", "hidden=[16]", "--d", "24", "48", "--max-K", "4", "--epochs", "2",
               "--lr", "0.3", "1", "--reference-lr", "0.01", "--burn-in-steps", "3", "--probes", "4",
               "--predicted-tasks", "2", "--out", str(out), "--tracking-uri", uri])
    assert rc == 0
    assert {p.name for p in out.iterdir()} == {"packing.md", "packing.csv", "tasks.csv", "interference.csv",
                                               "packing.png", "interference.png", "provenance.json"}
    rows = (out / "packing.csv").read_text().strip().splitlines()
    # 4 regimes x 2 d x 2 anchors x K in {1, 2, 4}
    assert len(rows) == 1 + 4 * 2 * 2 * 3
    md = (out / "packing.md").read_text()
    assert "## K_90 per regime" in md and "| joint_sum | wt |" in md
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("packing").experiment_id])
    parent = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parent) == 1 and parent[0].info.status == "FINISHED" and len(children) == 48
    assert parent[0].data.metrics["K_90.apart.d24.w0"] >= 1
    k1 = [c for c in children if c.data.params["K"] == "1"]
    assert all(c.data.metrics["retention_mean"] == 1.0 for c in k1)  # a pack of one is the task alone
    assert {a.path for a in client.list_artifacts(parent[0].info.run_id, "packing")} >= {
        "packing/packing.md", "packing/packing.png", "packing/interference.png"}


@pytest.mark.parametrize("args, message", [
    (["--max-K", "0"], "--max-K 0: the number of tasks K must be >= 1"),
    (["--max-K", "100", "--d", "24"], "--max-K 100 with d = 24 packs K·d = 2,400 > D = 1,210 dimensions; "
                                      "accepted: K·d <= D, i.e. --max-K <= 50 at this d"),
    (["--regimes", "apart", "parallel"], "unknown regime parallel; accepted: apart, sequential, joint, joint_sum"),
    (["--dataset", "imagenet"], "unknown dataset 'imagenet'; accepted: "),
    (["--anchors", "w1"], "unknown anchor w1; accepted: w0, wt"),
    (["--model-option", "hidden"], "--model-option 'hidden': expected KEY=VALUE, e.g. hidden=[128]"),
])
def test_pack_bad_input_is_one_line_and_logs_nothing(tmp_path, capsys, args, message):
    from benchmark.__main__ import main

    uri = f"sqlite:///{tmp_path}/m.db"
    base = ["--model-option", "hidden=[16]", "--epochs", "1"]
    assert main(["pack", *base, *args, "--out", str(tmp_path / "o"), "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {message}") and "\n" not in err
    assert not (tmp_path / "m.db").exists()  # checked before the store is opened: nothing logged
