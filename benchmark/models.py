"""Models by the names users type. Each builder takes (input_shape, num_classes, **options)."""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from benchmark.errors import UserError, choice_error


def mlp(input_shape, num_classes, hidden=(100, 100)) -> nn.Module:
    """Fully connected ReLU network on the flattened input: in-h1-...-hn-classes."""
    widths = [math.prod(input_shape), *hidden]
    layers: list[nn.Module] = [nn.Flatten()]
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(widths[-1], num_classes))
    return nn.Sequential(*layers)


def cnn1d(input_shape, num_classes, channels=25, kernel_size=5, depth=3) -> nn.Module:
    """The MNIST-1D paper's small 1D CNN: `depth` stride-2 convolutions, then a linear classifier."""
    c_in, length = input_shape
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Conv1d(c_in if i == 0 else channels, channels, kernel_size, stride=2, padding=1), nn.ReLU()]
    with torch.no_grad():
        n_feat = nn.Sequential(*layers)(torch.zeros(1, c_in, length)).numel()
    layers += [nn.Flatten(), nn.Linear(n_feat, num_classes)]
    return nn.Sequential(*layers)


MODELS: dict[str, Callable[..., nn.Module]] = {
    "mlp": mlp,
    "cnn1d": cnn1d,
}

# Which input ranks each model accepts: (C, L) is 1D, (C, H, W) 2D; the MLP takes anything.
_INPUT_RANKS = {"cnn1d": {2}}


def create_model(name: str, input_shape: tuple[int, ...], num_classes: int, **options) -> nn.Module:
    """Build model `name` for inputs of shape input_shape (without batch) and num_classes outputs."""
    if name not in MODELS:
        raise choice_error("model", name, MODELS)
    ranks = _INPUT_RANKS.get(name)
    if ranks is not None and len(input_shape) not in ranks:
        raise UserError(f"model {name!r} needs 1D inputs (C, L); this dataset gives {tuple(input_shape)}")
    try:
        return MODELS[name](tuple(input_shape), num_classes, **options)
    except TypeError as e:
        raise UserError(f"bad options for model {name!r}: {e}") from None
