import os

import pytest
import torch

from benchmark.data.splits import Splits
from benchmark.models import create_model
from subspaces.flat import FlatModel


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Generated datasets go to a per-session cache, never the user's."""
    os.environ["DOFBENCH_CACHE"] = str(tmp_path_factory.mktemp("cache"))


def blobs(n_train=256, n_val=64, n_test=128, dim=12, classes=4, seed=0) -> Splits:
    """A small, learnable classification problem: Gaussian blobs around random class means."""
    g = torch.Generator().manual_seed(seed)
    means = 2.0 * torch.randn(classes, dim, generator=g)

    def draw(n):
        y = torch.randint(0, classes, (n,), generator=g)
        x = means[y] + torch.randn(n, dim, generator=g)
        return x[:, None, :], y

    return Splits("blobs", *draw(n_train), *draw(n_val), *draw(n_test), classes)


@pytest.fixture(autouse=True)
def _run_in_tmp(tmp_path, monkeypatch):
    """MLflow artifacts (./mlruns) and any stray output land in the test's folder, not the checkout."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def data() -> Splits:
    return blobs()


@pytest.fixture
def flat(data) -> FlatModel:
    torch.manual_seed(0)
    return FlatModel.of(create_model("mlp", data.input_shape, data.num_classes, hidden=[16]))


def own_masks(methods, dims):
    """The own preparation (IMP, saliency masks) of `methods` at every d in dims, for prep.prepare."""
    from benchmark.methods import own_preparation, preparing

    return own_preparation({k: {"dims": list(dims), "anchors": list(a)} for k, a in preparing(methods).items()})


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(url: str, proc, log_path, timeout: float = 180) -> None:
    """Until url/health answers 200; fails the test with the server's log if it dies or never answers."""
    import time
    import urllib.request

    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            pytest.fail(f"{url} did not come up: {log_path.read_text()[-2000:]}")
        time.sleep(1)
