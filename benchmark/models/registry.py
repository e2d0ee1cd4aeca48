"""The model registry: name -> builder(input_shape, num_classes, **options) -> nn.Module, and the input ranks
it accepts. A model is one builder plus one `@register` (this module imports none of them; benchmark.models
imports them and they register themselves), as timm's `register_model` / `create_model`."""
from __future__ import annotations

from typing import Callable, NamedTuple

from torch import nn

from benchmark.core.errors import UserError, choice_error


class Model(NamedTuple):
    build: Callable[..., nn.Module]
    ranks: set[int] | None  # the input ranks it accepts: (C, L) is 1D, (C, H, W) 2D; None: any (e.g. the MLP)


MODELS: dict[str, Model] = {}


def register(name: str, ranks: set[int] | None = None):
    """Decorator: @register("lenet5", ranks={3}) on a builder adds it under `name`."""
    def add(build: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        MODELS[name] = Model(build, ranks)
        return build
    return add


def create_model(name: str, input_shape: tuple[int, ...], num_classes: int, **options) -> nn.Module:
    """Build model `name` for inputs of shape input_shape (without batch) and num_classes outputs."""
    if name not in MODELS:
        raise choice_error("model", name, MODELS)
    build, ranks = MODELS[name]
    if ranks is not None and len(input_shape) not in ranks:
        want = " or ".join({2: "1D inputs (C, L)", 3: "images (C, H, W)"}[r] for r in sorted(ranks))
        raise UserError(f"model {name!r} needs {want}; this dataset gives {tuple(input_shape)}")
    try:
        return build(tuple(input_shape), num_classes, **options)
    except TypeError as e:
        raise UserError(f"bad options for model {name!r}: {e}") from None


def create_from_config(model_cfg: dict, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The `model` config group: `name` (shown, and the experiment's name), `arch` (the registry key;
    defaults to name), and the builder's options. For arch `timm`, `name` is the timm model name."""
    arch = model_cfg.get("arch") or model_cfg["name"]
    options = {k: v for k, v in model_cfg.items() if k not in ("name", "arch")}
    if arch == "timm":
        options["model_name"] = model_cfg["name"]
    return create_model(arch, input_shape, num_classes, **options)
