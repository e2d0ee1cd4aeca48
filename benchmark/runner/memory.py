"""What a population holds, what the machine has, and how a run stays within it.

A population's life has two peaks. Training holds, per member, its subspace's tensors and
`training_bytes` (θ, its gradient and optimizer state, W, and one batch's activations kept for the
backward). Evaluation holds no backward, but runs every member on up to `eval_batch_size` examples at
once: K·B·activation_floats floats (measured: 0.80-0.89x of that on LeNet-5, K = 8-64, B = 500-2,048),
which at B = 2,048 is 5x the training batch's share of 128 x 3. So the runner packs populations by their
training bytes and gives each population's evaluation the largest example batch that fits what the
training left of the budget, at least the training batch (`evaluation_batch`): where evaluation fitted
before, nothing changes.
"""
from __future__ import annotations

import torch

from benchmark.core.errors import UserError
from benchmark.data.splits import Splits
from subspaces import FlatModel

MiB = 2**20


def tensor_bytes(obj, seen: set | None = None) -> int:
    """Bytes held by the tensors among a dataclass's fields (one level deep, plus nested projections).

    seen: storages already counted (their data pointers); a tensor sharing one, e.g. the lottery basis
    every candidate lr of a seed uses, costs nothing again. Updated in place."""
    seen = set() if seen is None else seen
    total = 0
    for value in vars(obj).values():
        if isinstance(value, torch.Tensor):
            key = (value.untyped_storage().data_ptr(), value.device)
            if key not in seen:
                seen.add(key)
                total += value.untyped_storage().nbytes()
        elif hasattr(value, "__dataclass_fields__"):
            total += tensor_bytes(value, seen)
    return total


def training_bytes(flat: FlatModel, d: int, batch_size: int, activation_floats: int) -> int:
    """What training one member adds beyond its subspace: θ with its grad and two Adam moments,
    W and its gradient (and a copy in the backward), and the batch's activations kept for backward."""
    return 4 * (4 * d + 3 * flat.D + 3 * batch_size * activation_floats)


def evaluation_batch(K: int, activation_floats: int, budget: int, used: int, batch_size: int,
                     eval_batch_size: int) -> int:
    """Examples per forward when evaluating a population of K members: the largest B <= eval_batch_size
    with K x B x activation_floats floats within what the population left of the budget, and never below
    the training batch (at most eval_batch_size).

    used: the population's bytes as packed (subspaces + K x training_bytes). The training batch's
    activations (3 x batch_size per example, counted in used) are free by then, but the CPU allocator
    keeps much of what it freed resident (measured: ~40% of an evaluation's peak stays), so evaluation
    does not count on them beyond one training batch, which always fits where training did."""
    room = max(0, budget - used)
    floor = min(batch_size, eval_batch_size)
    return max(1, floor, min(eval_batch_size, int(room // (4 * K * activation_floats))))


def activation_floats(flat: FlatModel, data: Splits) -> int:
    """Floats of every module output per example (one forward with hooks)."""
    total = [0]
    hooks = [m.register_forward_hook(lambda mod, inp, out: total.__setitem__(0, total[0] + out[0].numel()))
             for m in flat.module.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            flat.module(data.x_train[:1].to(data.y_train.device))
    finally:
        for h in hooks:
            h.remove()
    return total[0]


def available_bytes(device: torch.device) -> int | None:
    """Free memory where a population lives: the GPU's free memory, or the host's MemAvailable (None: unknown)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
        return info["MemAvailable"]
    except (OSError, KeyError, ValueError):
        return None


def default_memory_budget(device: torch.device) -> int:
    """Bytes a population may use: 70% of the GPU's free memory, or 40% of available RAM (at most 8 GiB)."""
    free = available_bytes(device)
    if free is None:
        return 4 * 2**30
    return int(0.7 * free) if device.type == "cuda" else int(min(8 * 2**30, 0.4 * free))


def check_fits(budget_mb: float, flat: FlatModel, data: Splits, dims: list[int], batch_size: int,
               device: torch.device) -> str | None:
    """Before any training: raise UserError, naming the override that fits, where the budget or one member
    (at the largest d of the grid) needs more than the device has free; return a note (None: nothing to
    say) where one member needs more than the budget and will train alone."""
    free = available_bytes(device)
    where = "the GPU" if device.type == "cuda" else "this machine"
    if free is not None and budget_mb * MiB > free:
        raise UserError(f"memory_budget_mb={budget_mb:g} is more than the {free / MiB:,.0f} MiB {where} has free; "
                        f"accepted: memory_budget_mb <= {free / MiB:,.0f}, or leave it out (default: "
                        f"{default_memory_budget(device) / MiB:,.0f})")
    per_example = activation_floats(flat, data)
    d = max(dims, default=0)
    one = training_bytes(flat, d, batch_size, per_example)
    if free is not None and one > free:
        fits = (free // 4 - 4 * d - 3 * flat.D) // (3 * per_example)
        hint = (f"train.batch_size={fits}" if fits >= 1 else "a smaller model or a larger ratio")
        raise UserError(f"one member at d = {d:,} needs {one / MiB:,.0f} MiB to train (batch {batch_size}), more "
                        f"than the {free / MiB:,.0f} MiB {where} has free; accepted: {hint}")
    if one > budget_mb * MiB:
        return (f"note: one member at d = {d:,} needs {one / MiB:,.0f} MiB, more than memory_budget_mb="
                f"{budget_mb:g}: such members train one at a time")
    return None


def resident_mb() -> float:
    """The process's resident memory now (MiB; VmRSS), 0.0 where the OS does not say."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
