"""Datasets as whole tensors on the training device, with fixed train/val/test splits: the one path every
loader ends in (split_arrays), how splits are carved and normalized, and the cache files loaders write.
Inputs keep a channel axis: (N, C, L) or (N, C, H, W)."""
from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class Splits:
    name: str
    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, k).nbytes for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"))

    @property
    def streamed(self) -> bool:
        """Inputs held in host memory while labels (and training) are on a GPU."""
        return self.x_train.device != self.y_train.device

    def to(self, device: torch.device | str, stream_above_bytes: int | None = None) -> Splits:
        """Every split on `device` as whole tensors (no loader overhead), unless `device` is a GPU and the
        splits take more than stream_above_bytes: then the inputs stay in host memory and each batch is
        gathered there and copied over as it is drawn (`take`), while labels and orders live on the GPU."""
        device = torch.device(device)
        stream = device.type == "cuda" and stream_above_bytes is not None and self.nbytes > stream_above_bytes
        t = {k: getattr(self, k).to(device) for k in ("y_train", "y_val", "y_test")}
        for k in ("x_train", "x_val", "x_test"):
            x = getattr(self, k)
            t[k] = x.cpu() if stream else x.to(device)
        return Splits(self.name, num_classes=self.num_classes, **t)

    @staticmethod
    def take(x: Tensor, idx: Tensor) -> Tensor:
        """x[idx] on idx's device: a host-resident x is indexed on the host, then only the batch is copied."""
        if x.device == idx.device:
            return x[idx]
        return x[idx.cpu()].to(idx.device)

    def describe(self) -> str:
        return (
            f"{self.name}: train {len(self.y_train)}, val {len(self.y_val)}, test {len(self.y_test)}, "
            f"input {self.input_shape}, {self.num_classes} classes"
        )


def default_cache_dir() -> Path:
    return Path(os.environ.get("DOFBENCH_CACHE", Path.home() / ".cache" / "dofbench"))


def write_cache(path: Path, write: Callable[[Path], None]) -> bool:
    """Write a cache file atomically: write(tmp), then rename, so a crash never leaves half a file.

    A cache only saves time, so a full disk or a read-only folder costs a warning (the work is
    redone next time), never the run: returns whether the file was written."""
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        os.replace(tmp, path)
        return True
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        warnings.warn(f"not cached: cannot write {path}: {e.strerror or e}; it will be recomputed next time",
                      stacklevel=2)
        return False


def _carve(x: np.ndarray, y: np.ndarray, fraction: float, seed: int):
    """Split off a random `fraction` of (x, y) with a seeded permutation: (rest, carved)."""
    perm = np.random.default_rng(seed).permutation(len(y))
    n = int(round(len(y) * fraction))
    held, rest = perm[:n], perm[n:]
    return (x[rest], y[rest]), (x[held], y[held])


def carve_stratified(x: np.ndarray, y: np.ndarray, fraction: float, seed: int):
    """Like _carve, but per class: a seeded `fraction` of each class is carved off, so both parts keep
    the class proportions (exact counts when fraction times every class size is a whole number)."""
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        held.append(idx[: int(round(len(idx) * fraction))])
    carved = np.zeros(len(y), dtype=bool)
    carved[np.concatenate(held)] = True
    return (x[~carved], y[~carved]), (x[carved], y[carved])


def _make_splits(name, train, val, test, num_classes) -> Splits:
    as_x = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)
    as_y = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.long)
    return Splits(
        name,
        as_x(train[0]), as_y(train[1]),
        as_x(val[0]), as_y(val[1]),
        as_x(test[0]), as_y(test[1]),
        num_classes,
    )


def standardize(train, val, test):
    """Every split standardized with the training split's mean and standard deviation (one scalar each:
    the inputs are one channel of samples or pixels). Returns (train, val, test)."""
    mean, std = float(train[0].mean()), float(train[0].std()) + 1e-8
    return tuple(((x - mean) / std, y) for x, y in (train, val, test))


def split_arrays(name: str, train, test, cfg: dict, num_classes: int, normalize, carve=None,
            test_fraction: float | None = None) -> Splits:
    """The one path every loader ends in. train, test: (x, y) arrays from the source (test None: a
    seeded test_fraction is carved off first). Then validation is carved from train (dataset.val_fraction,
    seeded by dataset.split_seed), train is subsampled (dataset.train_size), and every split is
    normalized with training statistics (normalize(train, val, test))."""
    carve = carve or _carve
    seed = cfg["split_seed"]
    val_seed = seed
    if test is None:
        train, test = carve(*train, test_fraction, seed)
        val_seed = seed + 1
    train, val = carve(*train, cfg["val_fraction"], val_seed)
    train = _subsample(train, cfg.get("train_size"), seed)
    return _make_splits(name, *normalize(train, val, test), num_classes)


def _subsample(train, size: int | None, seed: int):
    if size is None or size >= len(train[1]):
        return train
    idx = np.random.default_rng(seed).permutation(len(train[1]))[:size]
    return train[0][idx], train[1][idx]


def savez(path: Path, arrays: dict) -> None:
    with open(path, "wb") as f:  # a file object: np.savez would append ".npz" to a path
        np.savez(f, **arrays)


def read_npz(path: Path, keys) -> dict | None:
    """The cached arrays, or None when missing or unreadable (then they are regenerated)."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in keys}
    except Exception:
        return None


def normalize_images(train, val, test):
    """uint8 images scaled to [0, 1], then standardized per channel with the training split's mean and
    standard deviation (the torchvision datasets' normalization). Returns (train, val, test)."""
    xf = train[0].astype(np.float32) / 255.0
    mean = xf.mean(axis=(0, 2, 3), keepdims=True)[0]
    std = xf.std(axis=(0, 2, 3), keepdims=True)[0] + 1e-8
    return tuple(((x.astype(np.float32) / 255.0 - mean) / std, y) for x, y in (train, val, test))
