"""Where a run works: the device, the dataset on it, and the model as a function of one flat w."""
from __future__ import annotations

import os

import torch

from benchmark.config.build import RunConfig
from benchmark.core.errors import UserError
from benchmark.data.registry import load_dataset
from benchmark.models.registry import create_from_config
from subspaces.flat import FlatModel


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device 'cuda' was asked for but no CUDA GPU is visible; accepted here: auto, cpu")
    return torch.device(name)


def request_determinism() -> None:
    """Deterministic CUDA kernels where they exist. What remains nondeterministic on GPU: scatter-add
    (the sparse projection's forward, and the gradient of a coordinate gather), whose float sums
    depend on thread order; torch warns once per such kernel rather than refusing it."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS reductions
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)


def stream_above_bytes(device: torch.device) -> int | None:
    """A dataset larger than a quarter of the GPU's free memory streams from host memory;
    the rest of the memory is for the population."""
    if device.type != "cuda":
        return None
    return torch.cuda.mem_get_info(device)[0] // 4


def setup(cfg: RunConfig):
    """(device, data on the device, make_module, flat model) for a config."""
    device = resolve_device(cfg.device)
    if device.type == "cuda":
        request_determinism()
    data = load_dataset(cfg.dataset).to(device, stream_above_bytes(device))
    make_module = lambda: create_from_config(cfg.model, data.input_shape, data.num_classes)
    return device, data, make_module, FlatModel.of(make_module().to(device))
