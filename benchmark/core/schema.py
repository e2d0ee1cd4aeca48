"""Every key of `python -m benchmark run`: its default and what it means, in one place.

Hydra composes this schema (registered as `dofbench_schema`) under `conf/config.yaml`, whose YAML files
hold only presets (dataset, model, preset groups). Values are typed Any here so that a bad one reaches
`benchmark.config.build.build_config`, which names it and what is accepted in one line; the typed run
config (RunConfig, TrainConfig, ...) takes its defaults from here.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


def _key(default, help: str):
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


DEFAULT_METHODS = ["full", "random_pruning", "random_pruning_t", "erk_random", "lottery_ticket", "lottery_ticket_t",
                   "lottery_ticket_shuffled", "snip", "synflow", "random_affine", "burn_in_affine", "lottery_subspace",
                   "lottery_subspace_t", "lottery_subspace_indep"]


@dataclass
class Trajectory:
    every: Any = _key(1, "snapshot spacing in steps of the full-space run")
    centered: Any = _key(False, "principal directions around the trajectory's mean instead of around w0")
    complete: Any = _key(True, "d > trajectory rank: add random orthonormal directions (false: member FAILED)")


@dataclass
class Imp:
    fraction: Any = _key(0.2, "pruned per IMP round, of what remains")
    scope: Any = _key("global", "global | layer: magnitude ranking over all weights or per layer")
    prunable: Any = _key("all", "all | weights: weights keeps every bias (score-based masks and IMP)")


@dataclass
class Extension:
    enabled: Any = _key(True, "thresholds the ratios do not bracket get one wave of extra d (down to 1 or up to D)")
    max_dims: Any = _key(2, "the cap: new d per method in that wave")


@dataclass
class Tracking:
    uri: Any = _key(None, "null: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db")
    experiment: Any = _key(None, "null: <dataset>-<model>")


@dataclass
class Schema:
    dataset: Any = _key(None, "filled by the dataset config group: dataset=mnist1d (default), see datasets above")
    model: Any = _key(None, "filled by the model config group: model=mlp (default), see models above")
    methods: Any = _key(DEFAULT_METHODS, "a list, or all (every registered method)")
    ratios: Any = _key([1, 4, 16, 64, 256, 1024], "compression D/d; every method gets d = round(D / r)")
    seeds: Any = _key([0, 1, 2], "one member per seed in every cell")
    seed: Any = _key(None, "one seed instead of the list, e.g. swept: run -m seed=0,1,2")
    epochs: Any = _key(30, "the budget of every member, `full` included: epochs x ceil(train / batch_size) steps")
    batch_size: Any = _key(128, "training batch")
    optimizer: Any = _key("adam", "adam | sgd: of full-space and pruned training")
    lr: Any = _key(1e-2, "centre of the lr grid of full-space and pruning (axis-aligned) training")
    subspace_lr: Any = _key(1e-1, "centre of the lr grid of θ of general subspaces")
    subspace_optimizer: Any = _key("sgd", "adam | sgd: of θ of general subspaces (momentum below); null: optimizer")
    lr_grid: Any = _key([0.3, 1, 3], "candidate lrs: centre x each factor; chosen per (method, ratio) on validation")
    momentum: Any = _key(0.9, "sgd only")
    weight_decay: Any = _key(0.0, "on θ, i.e. towards the offset b")
    burn_in_steps: Any = _key(64, "t: full-space steps before the \"_t\" methods start")
    projection: Any = _key("auto", "auto | dense | sparse | fastfood (auto: dense for tiny d, else fastfood)")
    quantize_bits: Any = _key([16, 8, 4, 2], "θ rounded to b bits per number at evaluation, one scale per member: "
                                             "val_acc.bits<b>, test_acc.bits<b>; [] turns it off")
    trajectory: Trajectory = field(default_factory=Trajectory)
    imp: Imp = field(default_factory=Imp)
    extension: Extension = field(default_factory=Extension)
    device: Any = _key("auto", "auto | cpu | cuda")
    population: Any = _key(True, "train members together in batched populations (false: one at a time)")
    memory_budget_mb: Any = _key(None, "a population's memory; null: 70% of free GPU memory, or 40% of free RAM")
    force: Any = _key(False, "re-run members already FINISHED in the experiment with the same config_hash")
    tracking: Tracking = field(default_factory=Tracking)
    out: Any = _key(None, "also write the leaderboard's files, provenance.json and findings.json to this folder "
                          "(a committed result: leaderboards/results/<name>); null: MLflow only")
    preset_name: Any = _key("default", "the preset's name, logged with the run")


def keys(node=Schema, prefix: str = "") -> list[tuple[str, Any, str]]:
    """(dotted key, default, help) for every key of the schema, in order."""
    out = []
    for f in fields(node):
        default = getattr(node(), f.name)
        if hasattr(default, "__dataclass_fields__"):
            out += keys(type(default), f"{prefix}{f.name}.")
        else:
            out.append((f"{prefix}{f.name}", default, f.metadata.get("help", "")))
    return out


def register() -> None:
    """Make the schema known to Hydra (idempotent)."""
    from hydra.core.config_store import ConfigStore  # the training loop reads this schema and never needs Hydra

    ConfigStore.instance().store(name="dofbench_schema", node=Schema)
