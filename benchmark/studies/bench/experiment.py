"""`python -m benchmark bench`: the cost of subspace training, measured side by side in one process.

Every configuration is timed interleaved with the plain PyTorch step a careful user writes for the
same model (an nn.Module, F.cross_entropy, zero_grad(set_to_none=True), backward, Adam at the fastest
of its default / foreach / fused settings; same batch, same threads): vs_plain = step_ms / plain_ms is
the headline. overhead = step_ms / full_ms is the ratio to dofbench's own full-space step.

projection lines: the full-space step and a subspace step for each projection and d (the same
`Population.step` that training uses), with the peak memory the configuration added. population
lines: member-steps per second, K members batched in one step versus the same K members stepped one
after another, and versus plain steps; with the floating-point work of each step (torch's FLOP counter)
and the rate it ran at, against the machine's measured matrix-multiply rate: where a plain step already
runs near that rate, batching members cannot make it cheaper.
"""
from __future__ import annotations

import statistics
import threading
import time
from contextlib import contextmanager
from functools import partial

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode, conv_backward_flop

from benchmark.models import create_model
from benchmark.training.loop import Group, Population, TrainConfig
from subspaces import (
    RANDOM_PROJECTIONS,
    CoordinateProjection,
    DenseProjection,
    FlatModel,
    IdentityProjection,
    Subspace,
    gaussian_on_the_fly,
    random_projection,
    stack,
)
from subspaces.random import DENSE_BUDGET_BYTES
from subspaces.trajectory import completed_basis

# The inputs each bench model is measured on (random data; only the shapes matter).
BENCH_INPUTS = {
    "lenet_300_100": ((1, 28, 28), 10),
    "lenet5": ((1, 28, 28), 10),
    "conv2": ((1, 28, 28), 10),
    "mlp": ((1, 40), 10),
    "cnn1d": ((1, 40), 10),
}
DIMS = (10, 100, 1000, 10_000, 100_000)
# The lottery subspace's cost depends on r, the trajectory's principal directions it reads per product.
LOTTERY_RANK = 100


def lottery(D: int, d: int, seed: int, rank: int = LOTTERY_RANK):
    """A lottery subspace as training builds it, from a random orthonormal (D, rank) basis standing in for
    a trajectory's: a prefix of the stored basis for d <= rank, else the basis completed implicitly."""
    g = torch.Generator().manual_seed(seed)
    basis = torch.linalg.qr(torch.randn(D, rank, generator=g, dtype=torch.float64))[0].float()
    if d <= rank:
        return DenseProjection(basis[:, :d].T.contiguous()[None])
    return completed_basis(basis, d, seed)


# What `--projections` accepts: the random kernels by name, and lottery subspaces.
BENCH_PROJECTIONS = {**RANDOM_PROJECTIONS, "lottery": lottery}
PROJECTIONS = tuple(BENCH_PROJECTIONS)
POPULATION_K = (1, 8, 32, 128)
# On-the-fly dense regenerates D*d Gaussians twice per step; above this many it takes minutes a step.
MAX_ON_THE_FLY = 2_000_000_000


def _trim() -> None:
    """Hand freed heap memory back to the OS, so the next configuration's growth shows in RSS."""
    try:
        import ctypes  # glibc's malloc_trim, where there is one

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@contextmanager
def peak_memory(device: torch.device):
    """Yields a dict whose 'mb' is, after the block, the peak memory the block added.

    CUDA: the allocator's peak. CPU: resident memory sampled every millisecond (large tensors are
    returned to the OS when freed, so a configuration's peak is seen above the baseline before it).
    """
    out = {"mb": float("nan")}
    if device.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        yield out
        torch.cuda.synchronize()
        out["mb"] = (torch.cuda.max_memory_allocated() - base) / 2**20
        return
    _trim()
    base = _rss_bytes()
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.001)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        yield out
    finally:
        stop.set()
        t.join()
        out["mb"] = (max(peak[0], _rss_bytes()) - base) / 2**20


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_steps(pop: Population, x, y, device, repeats: int, budget_s: float = 20.0) -> float:
    """Median milliseconds of pop.step over `repeats` steps after warm-up (fewer when a step is slow)."""
    return time_interleaved({"step": lambda: pop.step(x, y.expand(pop.K, -1), True)}, device, repeats,
                            budget_s)["step"]


def time_interleaved(steps: dict, device, repeats: int, budget_s: float = 20.0) -> dict[str, float]:
    """{name: median milliseconds} of each step function, run in turn (one round = one call of each),
    so that all of them see the same machine state; two rounds of warm-up, fewer rounds when slow."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for i in range(repeats + 2):
        for name, fn in steps.items():
            _sync(device)
            t = time.perf_counter()
            fn()
            _sync(device)
            dt = time.perf_counter() - t
            if i >= 2 or dt > budget_s / 4:
                times[name].append(dt)
        if sum(map(sum, times.values())) > budget_s and all(times.values()):
            break
    return {name: 1e3 * statistics.median(v) for name, v in times.items()}


def grouped_conv_backward_flops(grad_out_shape, x_shape, w_shape, bias, stride, padding, dilation, transposed,
                                output_padding, groups, output_mask, out_shape=None, **kwargs) -> int:
    """torch's count of a convolution's backward with the weight gradient of a grouped convolution divided by
    its groups: torch (2.14) counts that gradient as one conv over all C_in x C_out channel pairs, G times
    the work of G groups' C_in/G x C_out/G (its input gradient is counted right, from the weight's shape)."""
    args = (grad_out_shape, x_shape, w_shape, bias, stride, padding, dilation, transposed, output_padding, groups)
    flops = conv_backward_flop(*args, [output_mask[0], False, False], out_val=out_shape)
    if output_mask[1]:
        flops += conv_backward_flop(*args, [False, True, False], out_val=out_shape) // groups
    return flops


def step_flops(step) -> int:
    """Floating-point operations of one call of `step` (forward, backward and optimizer), by torch's counter
    (matrix products and convolutions: the work that dominates; elementwise passes are not counted), its
    grouped-convolution backward corrected (vmap runs K members' convolutions as one grouped one)."""
    with FlopCounterMode(display=False, custom_mapping={torch.ops.aten.convolution_backward:
                                                        grouped_conv_backward_flops}) as counter:
        step()
    return counter.get_total_flops()


def matmul_gflops(device, n: int = 1024, repeats: int = 10) -> float:
    """The machine's measured rate on one float32 (n x n) @ (n x n) product, GFLOP/s: the ceiling that the
    step rates are read against."""
    a = torch.randn(n, n, device=device)
    ms = time_interleaved({"mm": lambda: a @ a}, device, repeats)["mm"]
    return 2 * n**3 / ms / 1e6


def _model(name, device):
    shape, classes = BENCH_INPUTS[name]
    torch.manual_seed(0)
    flat = FlatModel.of(create_model(name, shape, classes).to(device))
    return flat, shape, classes


def plain_step(model: str, x, y, device, repeats: int = 10):
    """(step function -> loss, Adam setting): the training step a user writes by hand for `model`, Adam at the
    fastest of its default, foreach and fused settings on this machine (timed here, interleaved)."""
    shape, classes = BENCH_INPUTS[model]
    y = y.reshape(-1)

    def make(**kw):
        torch.manual_seed(0)
        module = create_model(model, shape, classes).to(device).train()
        opt = torch.optim.Adam(module.parameters(), lr=1e-3, **kw)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(module(x), y)
            loss.backward()
            opt.step()
            return loss.detach()
        return step

    variants = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}
    steps = {}
    for name, kw in variants.items():
        try:
            steps[name] = make(**kw)
        except RuntimeError:  # no fused kernel on this device
            pass
    ms = time_interleaved(steps, device, repeats)
    best = min(ms, key=ms.get)
    return steps[best], best


def bench_projections(model: str, batch: int, device: torch.device, dims=DIMS, projections=PROJECTIONS,
                      repeats: int = 20, emit=print) -> list[dict]:
    flat, shape, classes = _model(model, device)
    D = flat.D
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, *shape, generator=g).to(device)
    y = torch.randint(0, classes, (1, batch), generator=g).to(device)
    cfg = TrainConfig()
    w0 = flat.flatten()[None]
    plain, adam = plain_step(model, x, y, device)
    emit(f"# plain step: nn.Module + F.cross_entropy + backward + Adam ({adam}, the fastest here)")
    full = Population(flat, [Group(Subspace(w0.clone(), IdentityProjection(1, D)), 1e-3, (0,))], cfg)
    full_step = lambda: full.step(x, y, True)

    def row(projection, d, ms, mem_mb):
        r = dict(kind="projection", projection=projection, model=model, D=D, d=d, K=1, device=str(device),
                 step_ms=round(ms["step"], 3), plain_ms=round(ms["plain"], 3), full_step_ms=round(ms["full"], 3),
                 vs_plain=round(ms["step"] / ms["plain"], 3), overhead=round(ms["step"] / ms["full"], 3),
                 plain_adam=adam, peak_mem_mb=round(mem_mb, 1))
        emit(r)
        return r

    rows = [row("identity", D, time_interleaved({"step": full_step, "plain": plain, "full": full_step}, device,
                                                repeats), float("nan"))]
    for kind in projections:
        for d in dims:
            if d >= D:
                continue
            if kind == "dense" and D * d * 4 > DENSE_BUDGET_BYTES and D * d > MAX_ON_THE_FLY:
                emit(f"# skipped dense d={d}: on the fly it regenerates {D * d:.1e} Gaussians twice a step")
                continue
            # Memory first (the sampler thread would steal a core from the timing), then time.
            with peak_memory(device) as mem:
                proj = BENCH_PROJECTIONS[kind](D, d, seed=1).to(device)
                pop = Population(flat, [Group(Subspace(w0.clone(), proj), 1e-2, (0,))], cfg)
                for _ in range(2):
                    pop.step(x, y, True)
            ms = time_interleaved({"step": partial(pop.step, x, y, True), "plain": plain, "full": full_step},
                                  device, repeats)
            # "dense" may have become "dense_on_the_fly"; a lottery subspace names its rank
            rows.append(row(f"lottery r={LOTTERY_RANK}" if kind == "lottery" else proj.kind, d, ms, mem["mb"]))
            del pop, proj
    return rows


def bench_population(model: str, batch: int, device: torch.device, ks=POPULATION_K, ratio: float = 10.0,
                     repeats: int = 10, emit=print) -> list[dict]:
    """Member-steps per second for K members of one subspace kind, batched vs one at a time."""
    flat, shape, classes = _model(model, device)
    D = flat.D
    d = round(D / ratio)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, *shape, generator=g).to(device)
    y = torch.randint(0, classes, (1, batch), generator=g).to(device)
    cfg = TrainConfig()
    w0 = flat.flatten()[None]

    def member(kind, k):
        if kind == "coordinates":
            idx = torch.randperm(D, generator=torch.Generator().manual_seed(k))[:d].sort().values
            return Subspace(w0 * 0, CoordinateProjection(idx[None], D)).to(device)
        return Subspace(w0.clone(), random_projection(kind, D, d, seed=k)).to(device)

    plain, adam = plain_step(model, x, y, device)
    plain_flops, peak = step_flops(plain), matmul_gflops(device)
    rows = []
    for kind in ("coordinates", "fastfood"):
        for K in ks:
            members = [member(kind, k) for k in range(K)]
            batched = Population(flat, [Group(stack(members), 1e-2, tuple([0] * K))], cfg)
            singles = [Population(flat, [Group(m, 1e-2, (0,))], cfg) for m in members]
            batched_step = lambda: batched.step(x, y.expand(K, -1), True)
            ms = time_interleaved({"batched": batched_step,
                                   "sequential": lambda: [p.step(x, y, True) for p in singles],
                                   "plain": plain}, device, repeats)
            flops = step_flops(batched_step) / K
            row = dict(kind="population", projection=kind, model=model, D=D, d=d, K=K, device=str(device),
                       batched_steps_per_s=round(1e3 * K / ms["batched"], 1),
                       sequential_steps_per_s=round(1e3 * K / ms["sequential"], 1),
                       plain_steps_per_s=round(1e3 / ms["plain"], 1), plain_adam=adam,
                       speedup=round(ms["sequential"] / ms["batched"], 2),
                       vs_plain=round(K * ms["plain"] / ms["batched"], 2),
                       member_mflop=round(flops / 1e6, 2), plain_mflop=round(plain_flops / 1e6, 2),
                       batched_gflops=round(K * flops / ms["batched"] / 1e6, 1),
                       plain_gflops=round(plain_flops / ms["plain"] / 1e6, 1), matmul_gflops=round(peak, 1))
            rows.append(row)
            emit(row)
    return rows


def bench_on_the_fly(model: str, batch: int, device: torch.device, dims, steps: int = 2, emit=print) -> list[dict]:
    """Peak memory of training with a dense projection that is never stored (regenerated per step)."""
    flat, shape, classes = _model(model, device)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, *shape, generator=g).to(device)
    y = torch.randint(0, classes, (1, batch), generator=g).to(device)
    rows = []
    for d in dims:
        with peak_memory(device) as mem:
            t = time.perf_counter()
            sub = Subspace(flat.flatten()[None], gaussian_on_the_fly(flat.D, d, seed=1).to(device))
            build_s = time.perf_counter() - t
            pop = Population(flat, [Group(sub, 1e-2, (0,))], TrainConfig())
            losses, t = [], time.perf_counter()
            for _ in range(steps):
                losses.append(float(pop.step(x, y, True)[0]))
            step_s = (time.perf_counter() - t) / steps
        row = dict(kind="on_the_fly", projection="dense_on_the_fly", model=model, D=flat.D, d=d, K=1,
                   device=str(device), stored_matrix_gb=round(flat.D * d * 4 / 1e9, 1), build_s=round(build_s, 1),
                   step_s=round(step_s, 1), losses=[round(v, 4) for v in losses], peak_mem_mb=round(mem["mb"], 1))
        rows.append(row)
        emit(row)
    return rows


# --- the model part of a population step: vmap against grouped convolutions -----------------------------

GROUPED_LAYERS = (torch.nn.Conv2d, torch.nn.Linear, torch.nn.ReLU, torch.nn.AvgPool2d, torch.nn.MaxPool2d,
                  torch.nn.Flatten)


def grouped_forward(flat: FlatModel, W: torch.Tensor, x: torch.Tensor, conv: str = "grouped") -> torch.Tensor:
    """K members of a plain conv net (Conv2d / pools / ReLU / Flatten / Linear in sequence) on one shared
    batch with each layer as one call: W (K, D), x (B, C, H, W) -> logits (K, B, classes).

    A member's channels sit side by side, K·C of them: the first convolution is one conv with K·out
    filters (the input is shared), the next ones grouped convolutions (groups = K: member k's filters
    read only member k's channels), so each does exactly K members' work; after Flatten, Linear is a
    batched matrix product. conv="unfold": the convolutions after the first as im2col and one batched
    matrix product over the members instead (F.unfold, then (K, out, C·k²) @ (K, C·k², B·L)). Candidates
    for FlatModel.batched on conv nets, measured here first (bench_grouped) against vmap's batched
    convolution (itself one grouped convolution: the same work, the same FLOPs)."""
    K = W.shape[0]
    params = {n: W[:, s].reshape(K, *shape) for n, s, shape in zip(flat.names, flat.slices, flat.shapes)}
    layers = [(name, m) for name, m in flat.module.named_modules() if not list(m.children())]
    h, split = x, False  # split: h carries the members (K·C channels, or a leading K after Flatten)
    for name, m in layers:
        prefix = f"{name}." if name else ""
        if not isinstance(m, GROUPED_LAYERS):
            raise ValueError(f"grouped_forward runs Conv2d, Linear, ReLU, pools and Flatten; not {type(m).__name__}")
        if isinstance(m, torch.nn.Conv2d):
            w, b = params[prefix + "weight"], params.get(prefix + "bias")
            if split and conv == "unfold":
                h = _unfolded_conv(h, w, b, m)
            else:
                h = F.conv2d(h, w.reshape(-1, *w.shape[2:]), None if b is None else b.reshape(-1), m.stride,
                             m.padding, m.dilation, K if split else 1)
            split = True
        elif isinstance(m, torch.nn.Linear):
            w, b = params[prefix + "weight"], params.get(prefix + "bias")
            h = (torch.einsum("bf,kof->kbo", h, w) if not split else torch.bmm(h, w.transpose(1, 2)))
            h = h if b is None else h + b[:, None, :]
            split = True
        elif isinstance(m, torch.nn.Flatten):
            h = h.reshape(h.shape[0], K, -1).transpose(0, 1) if split else h.flatten(1)
        else:
            h = m(h)
    return h if split else h.expand(K, *h.shape)


def _unfolded_conv(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, m: torch.nn.Conv2d) -> torch.Tensor:
    """Member k's conv of its channels: h (B, K·C, H, W), w (K, out, C, kh, kw) -> (B, K·out, H', W')."""
    B, K = h.shape[0], w.shape[0]
    cols = F.unfold(h, m.kernel_size, m.dilation, m.padding, m.stride)  # (B, K·C·kh·kw, L)
    L = cols.shape[-1]
    cols = cols.view(B, K, -1, L).permute(1, 2, 0, 3).reshape(K, -1, B * L)
    out = torch.bmm(w.reshape(K, w.shape[1], -1), cols)  # (K, out, B·L)
    if b is not None:
        out = out + b[:, :, None]
    Ho = (h.shape[2] + 2 * m.padding[0] - m.dilation[0] * (m.kernel_size[0] - 1) - 1) // m.stride[0] + 1
    return out.view(K, -1, B, L).permute(2, 0, 1, 3).reshape(B, -1, Ho, L // Ho)


def bench_grouped(model: str, batch: int, device: torch.device, ks=POPULATION_K, repeats: int = 10,
                  emit=print) -> list[dict]:
    """The model part of a population step (forward, cross-entropy, backward to W (K, D)) four ways:
    vmap (what FlatModel.batched runs today), grouped convolutions and im2col + bmm (grouped_forward),
    and K separate single-member calls; member-steps per second and the FLOPs per member each does.
    The forms' outputs are checked to agree first."""
    flat, shape, classes = _model(model, device)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, *shape, generator=g).to(device)
    y = torch.randint(0, classes, (batch,), generator=g).to(device)
    w0 = flat.flatten()
    peak = matmul_gflops(device)

    def step(forward, W):
        def run():
            W.grad = None
            logits = forward(W)
            F.cross_entropy(logits.reshape(-1, classes), y.repeat(len(W))).backward()
        return run

    rows = []
    for K in ks:
        W = (w0 + 0.01 * torch.randn(K, flat.D, generator=g).to(device)).requires_grad_()
        singles = [w.detach().clone()[None].requires_grad_() for w in W]
        forms = {"vmap": lambda V: flat.batched(V, x, True), "grouped": lambda V: grouped_forward(flat, V, x),
                 "unfold": lambda V: grouped_forward(flat, V, x, "unfold")}
        with torch.no_grad():
            ref = flat.batched(W, x, True)
            err = max(float((grouped_forward(flat, W, x, c) - ref).abs().max() / ref.abs().max())
                      for c in ("grouped", "unfold"))
        if err > 1e-4:
            raise RuntimeError(f"grouped_forward disagrees with vmap by {err:.1e} (relative) at K = {K}")
        steps = {name: step(f, W) for name, f in forms.items()}
        one = [step(lambda V: flat.batched(V, x, True), s) for s in singles]  # built once, not in the timing
        steps["sequential"] = lambda: [f() for f in one]
        ms = time_interleaved(steps, device, repeats)
        flops = {name: step_flops(s) / K for name, s in steps.items()}
        row = dict(kind="grouped", model=model, D=flat.D, K=K, device=str(device), max_rel_err=float(f"{err:.1e}"),
                   **{f"{n}_steps_per_s": round(1e3 * K / ms[n], 1) for n in steps},
                   **{f"{n}_mflop": round(flops[n] / 1e6, 1) for n in steps},
                   **{f"{n}_gflops": round(K * flops[n] / ms[n] / 1e6, 1) for n in steps},
                   matmul_gflops=round(peak, 1))
        rows.append(row)
        emit(row)
    return rows
