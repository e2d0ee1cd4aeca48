"""Datasets: the registry (benchmark.data.registry), the splits every loader returns (benchmark.data.splits)
and the loaders, which register themselves when imported here: offline ones first (benchmark.data.shipped,
then character-level text), then torchvision's."""
from benchmark.data.registry import DATASETS, Dataset, load_dataset, offline, register, selection_metric
from benchmark.data.splits import Splits, default_cache_dir, write_cache
from benchmark.data import shipped, text, vision  # noqa: E402,F401  (they register)

__all__ = ["DATASETS", "Dataset", "Splits", "default_cache_dir", "load_dataset", "offline", "register",
           "selection_metric", "write_cache"]
