"""A population's memory: evaluation fits the budget training was packed to, nothing grows across
populations, and a run that cannot fit says so before training."""
import gc
import subprocess
import sys
import warnings

import pytest
import torch

from benchmark.config.build import build_config
from benchmark.core.errors import UserError
from benchmark.data.splits import Splits
from benchmark.models import create_model
from benchmark.runner.grid import plan, train_cells
from benchmark.runner.memory import activation_floats, check_fits, evaluation_batch, resident_mb
from benchmark.runner.provenance import peak_rss_mb, reset_peak_rss
from benchmark.training.prep import init_weights, prepare
from subspaces.flat import FlatModel
from tests.conftest import blobs
from tests.test_cli import _raw

MiB = 2**20


def test_evaluation_batch_is_unchanged_where_evaluation_fits_and_shrinks_to_fit_where_not():
    act, K, batch = 10_000, 8, 128
    assert evaluation_batch(K, act, budget=2**34, used=2**20, batch_size=batch, eval_batch_size=2048) == 2048
    budget, used = 200 * MiB, 100 * MiB
    B = evaluation_batch(K, act, budget, used, batch, 2048)
    assert batch < B < 2048
    assert K * B * act * 4 <= budget - used < K * (B + 1) * act * 4  # the largest batch that fits what is left
    # a population packed to its budget still evaluates one training batch at a time (its activations are free)
    assert evaluation_batch(K, act, budget=1, used=10**9, batch_size=batch, eval_batch_size=2048) == batch
    assert evaluation_batch(K, act, budget=1, used=10**9, batch_size=batch, eval_batch_size=64) == 64


def _digits_like(n_train=128, n_eval=2048, seed=0) -> Splits:
    g = torch.Generator().manual_seed(seed)
    draw = lambda n: (torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g))
    return Splits("noise28", *draw(n_train), *draw(n_eval), *draw(n_eval), 10)


def _lenet_population(budget_mb: float):
    cfg = build_config(_raw(["methods=[random_affine]", "ratios=[4096]", "seeds=[0]", "epochs=1", "batch_size=128",
                             "lr_grid=[0.3,1,3]", "quantize_bits=[]", f"memory_budget_mb={budget_mb}"]))
    data = _digits_like()
    make = lambda: create_model("lenet5", data.input_shape, data.num_classes)
    flat = FlatModel.of(make())
    preps = prepare([0], torch.stack([init_weights(make, 0)]), flat, data, cfg.train, set(), {}, 0)
    cells = [c for c in plan(cfg, flat.D) if c.method != "full"] * 3  # 9 members in one population
    return cfg, data, flat, preps, cells


def test_a_population_s_evaluation_stays_within_the_budget_it_was_packed_to():
    """LeNet-5, 9 members, 2,048 evaluation examples: at eval_batch_size = 2,048 evaluation alone would hold
    9 x 2,048 x 10,754 floats (760 MiB); packed to 200 MiB, the whole population must stay near 200 MiB
    (the warm-up population first takes what torch loads lazily on a first optimizer step)."""
    budget = 200
    cfg, data, flat, preps, cells = _lenet_population(budget)
    act = activation_floats(flat, data)
    assert len(cells) * cfg.train.eval_batch_size * act * 4 > 3.5 * budget * MiB  # the unfixed evaluation
    warm = build_config(_raw(["methods=[random_affine]", "ratios=[4]", "seeds=[0]", "epochs=1", "quantize_bits=[]"]))
    small = blobs()
    tiny = FlatModel.of(create_model("mlp", small.input_shape, small.num_classes, hidden=[8]))
    train_cells(warm, plan(warm, tiny.D)[1:2], prepare([0], tiny.flatten()[None], tiny, small, warm.train, set(), {}, 0),
                tiny, small, on_done=lambda o: None)  # torch's lazy imports of a first optimizer step (~150 MiB)
    populations = []
    base = resident_mb()
    reset_peak_rss()
    train_cells(cfg, cells, preps, flat, data, on_done=populations.append)
    assert len(populations) == 1 and len(populations[0]) == 9
    # measured here: +130-160 MiB; +795 with every member on 2,048 examples at once, and +316 when evaluation
    # counted on the training activations' memory, which the allocator kept resident
    assert peak_rss_mb() - base < 1.25 * budget


def _live_tensor_bytes() -> int:
    """Bytes of every tensor storage Python still references (each storage once)."""
    seen, total = set(), 0
    with warnings.catch_warnings():  # isinstance on some of gc's objects touches deprecated torch aliases
        warnings.simplefilter("ignore")
        tensors = [obj for obj in gc.get_objects() if isinstance(obj, torch.Tensor)]
    for obj in tensors:
        if not obj.is_meta:
            storage = obj.untyped_storage()
            if storage.data_ptr() not in seen:
                seen.add(storage.data_ptr())
                total += storage.nbytes()
    return total


def test_memory_does_not_grow_with_the_number_of_populations():
    """24 populations back to back (a budget that holds one member each, D = 1.3M): the tensors still
    referenced after the 4th and after the 24th are the same bytes (keeping each population's W alone
    would add 20 x 5 MiB), and resident memory, past the allocator's warm-up, grows by less than what
    12 kept Ws would hold (measured here: about 20 MiB of allocator drift)."""
    cfg = build_config(_raw(["methods=[random_affine]", "ratios=[64]", "seeds=[0]", "epochs=1", "batch_size=64",
                             "lr_grid=[1]", "quantize_bits=[]"]))
    g = torch.Generator().manual_seed(0)
    draw = lambda n: (torch.randn(n, 1, 256, generator=g), torch.randint(0, 10, (n,), generator=g))
    data = Splits("noise256", *draw(128), *draw(256), *draw(256), 10)
    make = lambda: create_model("mlp", data.input_shape, data.num_classes, hidden=[1024, 1024])
    flat = FlatModel.of(make())
    preps = prepare([0], torch.stack([init_weights(make, 0)]), flat, data, cfg.train, set(), {}, 0)
    cells = [c for c in plan(cfg, flat.D) if c.method != "full"] * 24
    resident, held = [], []

    def after(outcomes):
        gc.collect()
        resident.append(resident_mb())
        held.append(_live_tensor_bytes())

    train_cells(cfg, cells, preps, flat, data, on_done=after, memory_budget=1)
    assert len(resident) == 24
    w = 4 * flat.D  # one member's W (K = 1, D)
    assert w > 4 * MiB
    assert held[-1] - held[3] < w / 2, [h - held[3] for h in held]
    assert sum(resident[14:]) / 10 - sum(resident[4:14]) / 10 < 12 * w / MiB, resident


def test_a_budget_larger_than_the_machine_is_refused_before_training():
    data = _digits_like(n_eval=16)
    flat = FlatModel.of(create_model("lenet5", data.input_shape, data.num_classes))
    with pytest.raises(UserError, match=r"memory_budget_mb=1e\+09 is more than the .* MiB this machine has free; "
                                        r"accepted: memory_budget_mb <= "):
        check_fits(1e9, flat, data, [10], 128, torch.device("cpu"))
    with pytest.raises(UserError, match=r"one member at d = 10 needs .* MiB to train \(batch 1000000000\), more than .*"
                                        r"accepted: train.batch_size=\d+"):
        check_fits(100, flat, data, [10], 10**9, torch.device("cpu"))
    note = check_fits(1, flat, data, [10], 128, torch.device("cpu"))
    assert note.startswith("note: one member at d = 10 needs") and "memory_budget_mb=1" in note
    assert check_fits(1000, flat, data, [10], 128, torch.device("cpu")) is None


def test_the_cli_refuses_a_budget_the_machine_lacks_in_one_line():
    proc = subprocess.run([sys.executable, "-m", "benchmark", "run", "preset=smoke", "memory_budget_mb=1e9"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "memory_budget_mb=1e+09 is more than the" in proc.stderr
    assert "Traceback" not in proc.stderr
