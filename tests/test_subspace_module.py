"""subspaces/ as a library: any torch model trained in a subspace with a hand-written loop."""
import subprocess
import sys

import torch
import torch.nn.functional as F
from torch import nn

from subspaces import DenseProjection, SubspaceModule, gaussian_directions


def test_a_plain_sequential_trains_in_a_subspace_with_torch_sgd_and_stays_in_span_A():
    torch.manual_seed(0)
    x = torch.randn(256, 10)
    y = (x[:, 0] + x[:, 1] > 0).long()
    model = nn.Sequential(nn.Linear(10, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 2))
    A_T = gaussian_directions(sum(p.numel() for p in model.parameters()), 20, seed=1)  # (d, D)
    wrapped = SubspaceModule(model, projection=DenseProjection(A_T[None]))
    assert [p for p in wrapped.parameters() if p.requires_grad] == [wrapped.theta] and wrapped.theta.shape == (20,)
    b = wrapped.weights().detach().clone()
    running_mean = model[1].running_mean.clone()
    opt = torch.optim.SGD(wrapped.parameters(), lr=0.5, momentum=0.9)
    losses = []
    for step in range(60):
        loss = F.cross_entropy(wrapped(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]
    delta = wrapped.weights().detach() - b
    coef = torch.linalg.lstsq(A_T.T, delta[:, None]).solution  # w − b = A c exactly for some c
    torch.testing.assert_close(A_T.T @ coef[:, 0], delta, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(coef[:, 0], wrapped.theta.detach(), atol=1e-4, rtol=1e-3)
    assert not torch.equal(model[1].running_mean, running_mean)  # BatchNorm statistics update in train mode
    wrapped.eval()
    frozen = model[1].running_mean.clone()
    wrapped(x)
    assert torch.equal(model[1].running_mean, frozen) and not model.training


def test_named_projection_with_exact_d_and_clear_errors():
    model = nn.Sequential(nn.Linear(4, 3))
    wrapped = SubspaceModule(model, d=5, projection="fastfood", seed=0)
    assert (wrapped.d, wrapped.D) == (5, 15)
    torch.testing.assert_close(wrapped(torch.ones(2, 4)), model(torch.ones(2, 4)))  # θ = 0: the model itself
    try:
        SubspaceModule(nn.Linear(4, 3), d=16)
    except ValueError as e:
        assert "d must be in [1, D=15]" in str(e)
    else:
        raise AssertionError("d > D was accepted")


def test_the_library_imports_neither_hydra_nor_mlflow():
    code = ("import sys; from subspaces import SubspaceModule, FlatModel; import baselines; "
            "bad = [m for m in ('hydra', 'mlflow', 'omegaconf', 'benchmark') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
