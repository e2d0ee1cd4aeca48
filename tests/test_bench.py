"""`python -m benchmark bench` on a tiny model: what each row reports (not how fast: timings are the
benchmark's job, not a unit test's)."""
import torch

from benchmark.models import create_model
from benchmark.studies.bench.experiment import (
    _model,
    bench_grouped,
    bench_population,
    bench_projections,
    grouped_forward,
    lottery,
    plain_step,
    step_flops,
)


def test_projection_rows_report_the_plain_step_and_the_full_step_side_by_side():
    rows = bench_projections("mlp", 16, torch.device("cpu"), dims=(10, 200), projections=("fastfood", "lottery"),
                             repeats=1, emit=lambda r: None)
    assert [(r["projection"], r["d"]) for r in rows] == [
        ("identity", rows[0]["D"]), ("fastfood", 10), ("fastfood", 200), ("lottery r=100", 10), ("lottery r=100", 200)]
    for r in rows:
        assert r["plain_adam"] in ("default", "foreach", "fused")
        assert r["step_ms"] > 0 and r["plain_ms"] > 0 and r["full_step_ms"] > 0
        assert abs(r["vs_plain"] - r["step_ms"] / r["plain_ms"]) < 1e-2 * r["vs_plain"] + 1e-3
        assert abs(r["overhead"] - r["step_ms"] / r["full_step_ms"]) < 1e-2 * r["overhead"] + 1e-3


def test_population_rows_compare_batched_sequential_and_plain_throughput():
    rows = bench_population("mlp", 16, torch.device("cpu"), ks=(1, 2), repeats=1, emit=lambda r: None)
    assert [(r["projection"], r["K"]) for r in rows] == [("coordinates", 1), ("coordinates", 2),
                                                          ("fastfood", 1), ("fastfood", 2)]
    for r in rows:
        assert r["plain_steps_per_s"] > 0 and r["batched_steps_per_s"] > 0 and r["vs_plain"] > 0
        # a member-step does the plain step's products and its subspace's (coordinates: none; Fastfood: a few)
        assert r["plain_mflop"] > 0 and r["member_mflop"] >= 0.99 * r["plain_mflop"]
        assert r["batched_gflops"] > 0 and r["plain_gflops"] > 0 and r["matmul_gflops"] > 0


def test_step_flops_counts_forward_and_backward_products():
    """An MLP's step: 2·B·in·out per layer forward, twice that backward (input and weight gradients), but no
    input gradient for the first layer."""
    torch.manual_seed(0)
    model = create_model("mlp", (1, 40), 10)
    x, y = torch.randn(16, 1, 40), torch.randint(0, 10, (16,))
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    fwd = [2 * 16 * m.in_features * m.out_features for m in layers]
    step = lambda: torch.nn.functional.cross_entropy(model(x), y).backward()
    assert step_flops(step) == 3 * sum(fwd) - fwd[0]


def test_the_plain_step_trains_the_model():
    x = torch.randn(32, 1, 40)
    y = torch.randint(0, 10, (1, 32))
    step, adam = plain_step("mlp", x, y, torch.device("cpu"), repeats=1)
    assert adam in ("default", "foreach", "fused")
    losses = [float(step()) for _ in range(30)]  # the chosen step keeps training one module
    assert losses[-1] < losses[0] * 0.8


def test_bench_lottery_is_the_stored_prefix_below_the_rank_and_the_completion_above():
    assert lottery(500, 20, seed=0, rank=30).kind == "dense"
    p = lottery(500, 40, seed=0, rank=30)
    assert p.kind == "completed_basis" and (p.r, p.d) == (30, 40)


def test_grouped_convolutions_compute_what_vmap_computes_with_k_members_work():
    """grouped_forward (one conv with groups = K per layer) gives each member's logits and gradient as
    vmap does, and its FLOPs per member are the single member's: the work vmap's batched conv exceeds."""
    for name in ("conv2", "lenet5"):
        flat, shape, classes = _model(name, torch.device("cpu"))
        g = torch.Generator().manual_seed(0)
        x, y = torch.randn(6, *shape, generator=g), torch.randint(0, classes, (6,), generator=g)
        W = flat.flatten() + 0.05 * torch.randn(3, flat.D, generator=g)
        grads = []
        for forward in (lambda V: flat.batched(V, x, True), lambda V: grouped_forward(flat, V, x),
                        lambda V: grouped_forward(flat, V, x, "unfold")):
            V = W.clone().requires_grad_()
            out = forward(V)
            assert out.shape == (3, 6, classes)
            torch.nn.functional.cross_entropy(out.reshape(-1, classes), y.repeat(3)).backward()
            grads.append((out.detach(), V.grad))
        (a, ga), *others = grads
        for b, gb in others:
            assert torch.allclose(a, b, atol=1e-5, rtol=1e-4) and torch.allclose(ga, gb, atol=1e-6, rtol=1e-3), name
        assert not torch.allclose(a[0], a[1])  # the members differ: each ran its own weights
    rows = bench_grouped("conv2", 8, torch.device("cpu"), ks=(1, 4), repeats=1, emit=lambda r: None)
    assert [r["K"] for r in rows] == [1, 4]
    for r in rows:
        assert abs(r["grouped_mflop"] - r["sequential_mflop"]) <= 0.01 * r["sequential_mflop"]
        assert abs(r["vmap_mflop"] - r["sequential_mflop"]) <= 0.01 * r["sequential_mflop"]  # vmap: a grouped conv
        assert r["grouped_steps_per_s"] > 0 and r["vmap_steps_per_s"] > 0 and r["max_rel_err"] < 1e-4
