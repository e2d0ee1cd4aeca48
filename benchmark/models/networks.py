"""The networks of the papers dofbench reproduces, each as the paper draws it, registered by name: MLPs and
LeNets (Li et al. 2018), the 1D CNN of MNIST-1D, fc/conv2/conv3/resnet20 (Larsen et al. 2022), and any
timm model. Each builder takes (input_shape, num_classes, **options). Inputs keep a channel axis: (C, L) for 1D, (C, H, W) for images."""
from __future__ import annotations

import math

import torch
from torch import nn

from benchmark.core.errors import UserError
from benchmark.models.registry import register


@register("mlp")
def mlp(input_shape, num_classes, hidden=(100, 100)) -> nn.Module:
    """Fully connected ReLU network on the flattened input: in-h1-...-hn-classes."""
    widths = [math.prod(input_shape), *hidden]
    layers: list[nn.Module] = [nn.Flatten()]
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(widths[-1], num_classes))
    return nn.Sequential(*layers)


@register("cnn1d", ranks={2})
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


@register("lenet_300_100")
def lenet_300_100(input_shape, num_classes) -> nn.Module:
    """LeNet-300-100 (LeCun et al. 1998; Frankle & Carbin 2019): 784-300-100-10 on MNIST, D = 266,610."""
    return mlp(input_shape, num_classes, hidden=(300, 100))


@register("lenet5", ranks={3})
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


@register("fc")
def fc(input_shape, num_classes, width=200, depth=2) -> nn.Module:
    """Li et al.'s (2018) fully connected family: `depth` hidden layers of `width` ReLU units.

    784-200-200-10 on MNIST has D = 199,210.
    """
    return mlp(input_shape, num_classes, hidden=(width,) * depth)


def _conv_avgpool(input_shape, num_classes, channels) -> nn.Module:
    """Larsen et al.'s (2022) small CNNs: per stage a 3x3 same-padded conv, ReLU, 2x2 average pool;
    then one dense layer."""
    c, h, w = input_shape
    layers: list[nn.Module] = []
    for c_out in channels:
        layers += [nn.Conv2d(c, c_out, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2)]
        c = c_out
    body = nn.Sequential(*layers, nn.Flatten())
    with torch.no_grad():
        n_feat = body(torch.zeros(1, *input_shape)).shape[1]
    return nn.Sequential(body, nn.Linear(n_feat, num_classes))


@register("conv2", ranks={3})
def conv2(input_shape, num_classes, channels=(16, 32)) -> nn.Module:
    """Conv-2: [16, 32] channels (`model.channels`, one entry per stage). D = 20,490 on MNIST."""
    return _conv_avgpool(input_shape, num_classes, tuple(channels))


@register("conv3", ranks={3})
def conv3(input_shape, num_classes, channels=(32, 64, 64)) -> nn.Module:
    """Conv-3: [32, 64, 64] channels (`model.channels`). D = 66,570 on CIFAR-10."""
    return _conv_avgpool(input_shape, num_classes, tuple(channels))


class _BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:  # projection shortcut: 1x1 conv + BN
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNetCifar(nn.Module):
    """He et al.'s (2016) CIFAR ResNet-(6n+2): 16/32/64 channels, n basic blocks per stage."""

    def __init__(self, input_shape, num_classes, depth: int = 20):
        super().__init__()
        if (depth - 2) % 6:
            raise UserError(f"resnet depth must be 6n+2 (20, 32, 44, 56, ...), got {depth}")
        n = (depth - 2) // 6
        self.conv = nn.Conv2d(input_shape[0], 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        blocks, c = [], 16
        for stage, width in enumerate((16, 32, 64)):
            for i in range(n):
                blocks.append(_BasicBlock(c, width, 2 if stage and i == 0 else 1))
                c = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        out = self.blocks(torch.relu(self.bn(self.conv(x))))
        return self.fc(out.mean(dim=(2, 3)))


@register("resnet20", ranks={3})
def resnet20(input_shape, num_classes) -> nn.Module:
    """ResNet-20 (D = 272,474 on CIFAR-10: projection shortcuts, BatchNorm affine parameters included)."""
    return ResNetCifar(input_shape, num_classes, 20)


@register("timm", ranks={3})
def timm_model(input_shape, num_classes, model_name: str = "resnet10t", **options) -> nn.Module:
    """Any timm architecture by name, randomly initialized, with the dataset's channels and classes."""
    import timm  # seconds to import: only for arch=timm

    if not timm.is_model(model_name):
        close = timm.list_models(f"*{model_name.split('_')[0]}*")[:8]
        raise UserError(f"unknown timm model {model_name!r}" + (f"; similar: {', '.join(close)}" if close else "")
                        + "; see timm.list_models()")
    return timm.create_model(model_name, pretrained=False, num_classes=num_classes, in_chans=input_shape[0],
                             **options)
