"""Torchvision datasets: downloaded when the machine is online, else read from `dataset.root`.

Files are read in each library's own format (IDX for the MNIST family through torchvision; the
pickled batches of CIFAR and SVHN's .mat files by the readers below, because torchvision's classes
insist on the md5 of the official files). Images are normalized per channel with training-split
statistics; a validation split is carved from train with a seed.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from benchmark.core.errors import UserError
from benchmark.data.registry import offline, register
from benchmark.data.splits import Splits, default_cache_dir, normalize_images, split_arrays

# name -> (torchvision class, folder its files live in, files that must be there, classes)
MNIST_FAMILY = {
    "mnist": ("MNIST", "MNIST/raw", 10),
    "fashion_mnist": ("FashionMNIST", "FashionMNIST/raw", 10),
    "kmnist": ("KMNIST", "KMNIST/raw", 10),
}
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _missing(name: str, root: Path, where: str, files, download_error: str | None) -> UserError:
    why = f" (download failed: {download_error})" if download_error else " (dataset.download=false)"
    return UserError(
        f"dataset {name!r} is not under {root}{why}. Put its files in {root / where}/ "
        f"({', '.join(files)}), or pass dataset.root=<folder that holds them>. "
        f"Datasets that work offline: {', '.join(offline())}"
    )


def _download(name: str, cls: str, root: Path, **kw) -> str | None:
    """Try torchvision's download; the error text when it fails (offline), else None."""
    import torchvision  # only the torchvision datasets need it (seconds to import)

    try:
        getattr(torchvision.datasets, cls)(str(root), download=True, **kw)
        return None
    except Exception as e:  # URLError, HTTPError, socket errors, RuntimeError('... not found or corrupted')
        return str(e).splitlines()[0][:200] if str(e) else type(e).__name__


def load_mnist_family(name: str, root: Path, download: bool):
    """((x_train, y_train), (x_test, y_test)) as uint8 (N, 1, 28, 28) and int64 (N,)."""
    import torchvision  # only the torchvision datasets need it (seconds to import)

    cls, where, classes = MNIST_FAMILY[name]
    present = all((root / where / f).exists() for f in IDX_FILES)
    error = None
    if not present:
        if not download:
            raise _missing(name, root, where, IDX_FILES, None)
        error = _download(name, cls, root)
        if error is not None:
            raise _missing(name, root, where, IDX_FILES, error)
    ds = getattr(torchvision.datasets, cls)
    train, test = ds(str(root), train=True, download=False), ds(str(root), train=False, download=False)
    as_np = lambda d: (d.data.numpy()[:, None], d.targets.numpy().astype(np.int64))
    return as_np(train), as_np(test), classes


CIFAR = {
    "cifar10": ("CIFAR10", "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels", 10),
    "cifar100": ("CIFAR100", "cifar-100-python", ["train"], ["test"], b"fine_labels", 100),
}


def load_cifar(name: str, root: Path, download: bool):
    cls, where, train_files, test_files, key, classes = CIFAR[name]
    folder = root / where
    files = train_files + test_files
    if not all((folder / f).exists() for f in files):
        error = _download(name, cls, root) if download else None
        if not download or error is not None:
            raise _missing(name, root, where, files, error)

    def read(names):
        xs, ys = [], []
        for n in names:
            with open(folder / n, "rb") as f:
                batch = pickle.load(f, encoding="bytes")  # the library's format is a pickle
            xs.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(batch[key], dtype=np.int64))
        return np.concatenate(xs), np.concatenate(ys)

    return read(train_files), read(test_files), classes


def load_svhn(name: str, root: Path, download: bool):
    from scipy.io import loadmat  # SVHN's .mat files only

    files = ["train_32x32.mat", "test_32x32.mat"]
    if not all((root / f).exists() for f in files):
        error = None
        if download:
            for split in ("train", "test"):
                error = error or _download(name, "SVHN", root, split=split)
        if not download or error is not None:
            raise _missing(name, root, ".", files, error)

    def read(f):
        m = loadmat(str(root / f))
        x = np.transpose(m["X"], (3, 2, 0, 1)).astype(np.uint8)  # (32, 32, 3, N) -> (N, 3, 32, 32)
        y = m["y"].reshape(-1).astype(np.int64) % 10  # SVHN labels the digit 0 as 10
        return x, y

    return read(files[0]), read(files[1]), 10


LOADERS = {**{n: load_mnist_family for n in MNIST_FAMILY}, **{n: load_cifar for n in CIFAR}, "svhn": load_svhn}


def load_vision(cfg: dict) -> Splits:
    """A torchvision dataset (see benchmark.data.vision): per-channel standardization with train statistics."""
    name = cfg["name"]
    root = Path(cfg.get("root") or default_cache_dir() / "datasets").expanduser()
    if cfg.get("root") and not root.is_dir():
        raise UserError(f"dataset.root={cfg['root']!r} does not exist or is not a folder")
    train, test, classes = LOADERS[name](name, root, bool(cfg.get("download", True)))
    return split_arrays(name, train, test, cfg, classes, normalize_images)


for _name in LOADERS:
    register(_name, offline=False)(load_vision)
