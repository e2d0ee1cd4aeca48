"""Typed run configuration, built from the composed Hydra config and validated before any work.
Its defaults are the schema's (benchmark.core.schema), the one place every key is defined.

Every value a user can type is checked here, with a message that names the bad value and what is
accepted. Hydra itself rejects unknown keys and unknown config-group options.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from typing import Any

from benchmark.config.compose import compose
from benchmark.core import schema
from benchmark.core.errors import UserError, choice_error
from benchmark.methods import METHODS
from benchmark.training.loop import OPTIMIZERS, TrainConfig
from subspaces import RANDOM_PROJECTIONS

PROJECTIONS = ("auto", *RANDOM_PROJECTIONS)  # auto: dense for tiny d, else fastfood
IMP_SCOPES = ("global", "layer")
IMP_PRUNABLE = ("all", "weights")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class ImpConfig:
    fraction: float = schema.Imp().fraction  # of the remaining coordinates pruned per round
    scope: str = schema.Imp().scope  # global magnitude ranking, or per layer
    prunable: str = schema.Imp().prunable  # "all" keeps d exact over all D; "weights" never prunes biases


@dataclass(frozen=True)
class TrajectoryConfig:
    every: int = schema.Trajectory().every  # a snapshot w_k - w0 every `every` full-space steps
    centered: bool = schema.Trajectory().centered  # PCA around the trajectory mean instead of around w0
    complete: bool = schema.Trajectory().complete  # when d > rank, fill with random orthonormal directions


@dataclass(frozen=True)
class ExtensionConfig:
    enabled: bool = schema.Extension().enabled  # one wave of extra d where the ratios do not bracket a threshold
    max_dims: int = schema.Extension().max_dims  # the cap: new d per method in that wave


@dataclass(frozen=True)
class RunConfig:
    dataset: dict
    model: dict
    methods: tuple[str, ...]
    ratios: tuple[float, ...]
    seeds: tuple[int, ...]
    train: TrainConfig
    subspace_lr: float
    subspace_optimizer: str  # of θ of general subspaces (random affine, burn-in, lottery subspaces)
    lr_grid: tuple[float, ...]  # candidate learning rates: lr (or subspace_lr) x each factor
    burn_in_steps: int
    projection: str
    quantize_bits: tuple[int, ...]  # θ evaluated rounded to each of these bit widths (benchmark.training.description)
    trajectory: TrajectoryConfig
    imp: ImpConfig
    extension: ExtensionConfig
    device: str
    population: bool
    memory_budget_mb: float | None
    force: bool
    tracking_uri: str | None
    experiment: str | None
    preset: str = "default"
    out: str | None = None  # a folder for the leaderboard's files with provenance.json and findings.json

    @property
    def experiment_name(self) -> str:
        return self.experiment or f"{self.dataset['name']}-{self.model['name']}"

    @property
    def lr_grid_text(self) -> str:
        """lr_grid as logged (an MLflow param): '0.3,1,3'."""
        return ",".join(f"{f:g}" for f in self.lr_grid)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        """The inverse of to_dict, e.g. for a parent run's config.json. A file written before a field
        existed loads with what that older version did (one lr, the same optimizer for θ, no extension
        wave), and any other missing field takes today's default; an unreadable one is a UserError."""
        older = {"lr_grid": [1.0], "subspace_optimizer": (d.get("train") or {}).get("optimizer"),
                 "extension": {"enabled": False}, "quantize_bits": []}
        d = _fill({**{k: v for k, v in older.items() if v is not None}, **d}, default_config().to_dict())
        try:
            return cls(**{**d, "methods": tuple(d["methods"]), "ratios": tuple(float(r) for r in d["ratios"]),
                          "lr_grid": tuple(float(f) for f in d["lr_grid"]),
                          "quantize_bits": tuple(int(b) for b in d["quantize_bits"]),
                          "seeds": tuple(int(s) for s in d["seeds"]), "train": TrainConfig(**d["train"]),
                          "trajectory": TrajectoryConfig(**d["trajectory"]), "imp": ImpConfig(**d["imp"]),
                          "extension": ExtensionConfig(**{**asdict(ExtensionConfig()), **d["extension"]})})
        except (TypeError, ValueError, KeyError) as e:
            raise UserError(f"this config (a config.json) cannot be read by this version of dofbench: "
                            f"{str(e).splitlines()[0]}; re-run it with the version that wrote it") from None

    def hash(self, *extra: Any) -> str:
        """Content hash of everything that changes results (not where they are logged)."""
        d = self.to_dict()
        for k in ("tracking_uri", "experiment", "population", "memory_budget_mb", "force", "preset", "methods",
                  "ratios", "seeds", "extension", "out"):
            d.pop(k)
        blob = json.dumps([d, *extra], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def default_config() -> RunConfig:
    """Today's defaults: the composed `conf/config.yaml` with no overrides."""
    return build_config(compose([]))


def _fill(d: dict, defaults: dict) -> dict:
    """d with every key of defaults it lacks (recursively into dicts)."""
    out = dict(d)
    for k, v in defaults.items():
        if k not in out:
            out[k] = v
        elif isinstance(v, dict) and isinstance(out[k], dict) and k not in ("dataset", "model"):
            out[k] = _fill(out[k], v)
    return out


def _number(name: str, value: Any, kind=float) -> float:
    if isinstance(value, bool):
        raise UserError(f"{name} must be a number, got {value!r}")
    try:
        out = kind(value)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a number, got {value!r}") from None
    if kind is int and out != float(value):
        raise UserError(f"{name} must be a whole number, got {value!r}")
    if isinstance(out, float) and not math.isfinite(out):
        raise UserError(f"{name} must be finite, got {value!r}")
    return out


def _positive(name: str, value: Any, kind=float):
    v = _number(name, value, kind)
    if v <= 0:
        raise UserError(f"{name} must be > 0, got {value!r}")
    return v


def _as_list(value: Any) -> list:
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str) and "," in value:
        return [v.strip() for v in value.split(",") if v.strip()]
    return [value]


def _choice(name: str, value: Any, accepted) -> str:
    if value not in accepted:
        raise choice_error(name, value, accepted)
    return value


def _lr_grid(value: Any) -> tuple[float, ...]:
    """Factors of lr / subspace_lr, each a candidate learning rate: non-empty, positive numbers."""
    accepted = "a non-empty list of positive factors of lr and subspace_lr, e.g. lr_grid=[0.3,1,3]"
    items = [] if value is None else _as_list(value)
    if not items:
        raise UserError(f"lr_grid is empty; accepted: {accepted}")
    factors = []
    for v in items:
        try:
            f = _number("lr_grid", v)
        except UserError:
            raise UserError(f"lr_grid entry {v!r} is not a number; accepted: {accepted}") from None
        if f <= 0:
            raise UserError(f"lr_grid entry {v!r} is not positive; accepted: {accepted}")
        factors.append(f)
    return tuple(sorted(set(factors)))


def _extension(raw: dict) -> ExtensionConfig:
    cap = _number("extension.max_dims", raw.get("max_dims", ExtensionConfig.max_dims), int)
    if cap < 1:
        raise UserError(f"extension.max_dims must be >= 1 (new d per method; extension.enabled=false turns "
                        f"the wave off), got {raw.get('max_dims')!r}")
    return ExtensionConfig(enabled=bool(raw.get("enabled", True)), max_dims=int(cap))


def build_config(raw: dict) -> RunConfig:
    """Validate the composed config (a plain dict) into a RunConfig, or raise UserError (checked in the
    order of the schema, so the first bad key is the one named)."""
    methods, ratios, seeds, train, imp = _methods(raw), _ratios(raw), _seeds(raw), _train(raw), _imp(raw)
    burn_in = int(_number("burn_in_steps", raw["burn_in_steps"], int))
    if burn_in < 0:
        raise UserError(f"burn_in_steps must be >= 0, got {raw['burn_in_steps']!r}")
    traj, tracking = raw["trajectory"], raw.get("tracking") or {}
    return RunConfig(
        dataset=dict(raw["dataset"]),
        model=dict(raw["model"]),
        methods=methods,
        ratios=ratios,
        seeds=seeds,
        train=train,
        subspace_lr=_positive("subspace_lr", raw["subspace_lr"]),
        subspace_optimizer=_choice("subspace_optimizer", raw.get("subspace_optimizer") or raw["optimizer"], OPTIMIZERS),
        lr_grid=_lr_grid(raw.get("lr_grid", [1])),
        burn_in_steps=burn_in,
        projection=_choice("projection", raw["projection"], PROJECTIONS),
        quantize_bits=_quantize_bits(raw.get("quantize_bits", [])),
        trajectory=TrajectoryConfig(
            every=_positive("trajectory.every", traj["every"], int),
            centered=bool(traj["centered"]),
            complete=bool(traj["complete"]),
        ),
        imp=imp,
        extension=_extension(raw.get("extension") or {}),
        device=_choice("device", raw["device"], DEVICES),
        population=bool(raw["population"]),
        force=bool(raw.get("force", False)),
        memory_budget_mb=None if raw.get("memory_budget_mb") is None
        else _positive("memory_budget_mb", raw["memory_budget_mb"]),
        tracking_uri=tracking.get("uri"),
        experiment=tracking.get("experiment"),
        preset=str(raw.get("preset_name", "default")),
        out=None if raw.get("out") in (None, "") else str(raw["out"]),
    )


def _methods(raw: dict) -> tuple[str, ...]:
    """methods: registered names or `all`, deduplicated in the order given; `full` first when another
    method's preparation (w_t, the trajectory, IMP) follows the reference's validation-chosen recipe."""
    methods_raw = _as_list(raw["methods"])
    if methods_raw in (["all"], ["ALL"]):
        methods = tuple(METHODS)
    else:
        methods = tuple(dict.fromkeys(_choice("method", str(m), list(METHODS) + ["all"]) for m in methods_raw))
        if "all" in methods:
            methods = tuple(METHODS)
    if not methods:
        raise UserError("methods is empty; give at least one, e.g. methods=[full,random_affine] "
                        "(`python -m benchmark list` names them all)")
    if "full" not in methods and any(METHODS[m].needs for m in methods):
        methods = ("full",) + methods
    return methods


def _ratios(raw: dict) -> tuple[float, ...]:
    """ratios: compression ratios D/d >= 1, sorted and deduplicated."""
    ratios = []
    for r in _as_list(raw["ratios"]):
        v = _number("ratio", r)
        if v < 1:
            raise UserError(f"ratio must be >= 1 (D/d; 1 means d = D), got {r!r}")
        ratios.append(v)
    if not ratios:
        raise UserError("ratios is empty; give at least one compression ratio D/d, e.g. ratios=[1,4,16]")
    return tuple(sorted(set(ratios)))


def _seeds(raw: dict) -> tuple[int, ...]:
    seeds = tuple(int(_number("seed", s, int)) for s in _as_list(raw["seeds"]))
    if raw.get("seed") is not None:  # `seed=3` (e.g. swept with -m seed=0,1,2) is seeds=[3]
        seeds = (int(_number("seed", raw["seed"], int)),)
    if not seeds:
        raise UserError("seeds is empty; give at least one, e.g. seeds=[0]")
    return seeds


def _train(raw: dict) -> TrainConfig:
    """The recipe of full-space and pruned training (θ of general subspaces: subspace_lr, subspace_optimizer)."""
    train = TrainConfig(
        optimizer=_choice("optimizer", raw["optimizer"], OPTIMIZERS),
        lr=_positive("lr", raw["lr"]),
        momentum=_number("momentum", raw["momentum"]),
        weight_decay=_number("weight_decay", raw["weight_decay"]),
        epochs=_positive("epochs", raw["epochs"], int),
        batch_size=_positive("batch_size", raw["batch_size"], int),
    )
    if train.weight_decay < 0:
        raise UserError(f"weight_decay must be >= 0, got {raw['weight_decay']!r}")
    return train


def _imp(raw: dict) -> ImpConfig:
    imp = raw["imp"]
    cfg = ImpConfig(
        fraction=_number("imp.fraction", imp["fraction"]),
        scope=_choice("imp.scope", imp["scope"], IMP_SCOPES),
        prunable=_choice("imp.prunable", imp["prunable"], IMP_PRUNABLE),
    )
    if not 0 < cfg.fraction < 1:
        raise UserError(f"imp.fraction must be in (0, 1), got {imp['fraction']!r}")
    return cfg


def _quantize_bits(value: Any) -> tuple[int, ...]:
    """Bit widths for quantized evaluation: distinct whole numbers 2..16, largest first."""
    accepted = "a list of whole numbers from 2 to 16, e.g. quantize_bits=[16,8,4,2], or [] for none"
    out = set()
    for v in _as_list(value):
        b = _number("quantize_bits entry", v, int)
        if not 2 <= b <= 16:
            raise UserError(f"quantize_bits entry {v!r} is out of range; accepted: {accepted}")
        out.add(int(b))
    return tuple(sorted(out, reverse=True))


def dim_for_ratio(D: int, ratio: float) -> int:
    """d = round(D / r), the same for every method at ratio r."""
    return int(round(D / ratio))
