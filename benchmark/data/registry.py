"""The dataset registry: name -> how to load it, whether it needs a download or files, and which validation
metric its lrs are chosen on. A dataset is one loader plus one `register` (this module imports none of the
loaders; benchmark.data imports them, and they register themselves): every list of names derives from here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from benchmark.core.errors import UserError, choice_error
from benchmark.data.splits import Splits


@dataclass(frozen=True)
class Dataset:
    load: Callable[[dict], Splits]  # cfg: the `dataset` config group as a dict -> Splits
    offline: bool = True  # needs no download and no files
    # The validation metric every cell's lr is chosen on (leaderboards.selection): val_loss for language
    # modelling, which is judged in bits per character (an lr chosen on accuracy can overfit in loss: bits
    # near the unigram model's at the best accuracy), val_acc for classification.
    metric: str = "val_acc"


DATASETS: dict[str, Dataset] = {}


def register(name: str, offline: bool = True, metric: str = "val_acc"):
    """Decorator: @register("mnist1d") on a loader cfg -> Splits adds it under `name`."""
    def add(load: Callable[[dict], Splits]) -> Callable[[dict], Splits]:
        if name in DATASETS:
            raise ValueError(f"dataset {name!r} is registered twice")
        DATASETS[name] = Dataset(load, offline, metric)
        return load
    return add


def offline() -> tuple[str, ...]:
    """The datasets that need no download and no files, in registration order."""
    return tuple(n for n, d in DATASETS.items() if d.offline)


def selection_metric(name: str) -> str:
    """The validation metric the dataset's lrs are chosen on (Dataset.metric); val_acc for a name not registered."""
    return DATASETS[name].metric if name in DATASETS else "val_acc"


def load_dataset(cfg: dict) -> Splits:
    """cfg: the `dataset` config group as a dict (name, val_fraction, split_seed, ...)."""
    name = cfg["name"]
    if name not in DATASETS:
        raise choice_error("dataset", name, DATASETS)
    if not 0 < float(cfg["val_fraction"]) < 1:
        raise UserError(f"dataset.val_fraction must be in (0, 1), got {cfg['val_fraction']!r}")
    return DATASETS[name].load(cfg)
