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


def lenet_300_100(input_shape, num_classes) -> nn.Module:
    """LeNet-300-100 (LeCun et al. 1998; Frankle & Carbin 2019): 784-300-100-10 on MNIST, D = 266,610."""
    return mlp(input_shape, num_classes, hidden=(300, 100))


def lenet5(input_shape, num_classes) -> nn.Module:
    """LeNet-5 as in Li et al. (2018): conv 6@5x5, max-pool, conv 16@5x5, max-pool, 120-84-classes.

    D = 44,426 on 28x28 MNIST.
    """
    c, h, w = input_shape
    features = nn.Sequential(
        nn.Conv2d(c, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
    )
    with torch.no_grad():
        n_feat = features(torch.zeros(1, c, h, w)).shape[1]
    return nn.Sequential(
        features,
        nn.Linear(n_feat, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, num_classes),
    )


MODELS: dict[str, Callable[..., nn.Module]] = {
    "mlp": mlp,
    "cnn1d": cnn1d,
    "lenet_300_100": lenet_300_100,
    "lenet5": lenet5,
}

# Which input ranks each model accepts: (C, L) is 1D, (C, H, W) 2D; the MLP takes anything.
_INPUT_RANKS = {"cnn1d": {2}, "lenet5": {3}}


def create_model(name: str, input_shape: tuple[int, ...], num_classes: int, **options) -> nn.Module:
    """Build model `name` for inputs of shape input_shape (without batch) and num_classes outputs."""
    if name not in MODELS:
        raise choice_error("model", name, MODELS)
    ranks = _INPUT_RANKS.get(name)
    if ranks is not None and len(input_shape) not in ranks:
        want = " or ".join({2: "1D inputs (C, L)", 3: "images (C, H, W)"}[r] for r in sorted(ranks))
        raise UserError(f"model {name!r} needs {want}; this dataset gives {tuple(input_shape)}")
    try:
        return MODELS[name](tuple(input_shape), num_classes, **options)
    except TypeError as e:
        raise UserError(f"bad options for model {name!r}: {e}") from None
