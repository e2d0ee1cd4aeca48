import pytest
import torch

from baselines import iterative_magnitude_pruning, magnitude_keep, prune_schedule, random_coordinates


def test_random_coordinates_exact_count_distinct_and_seeded():
    idx = random_coordinates(1000, 137, seed=5)
    assert idx.numel() == 137 and idx.unique().numel() == 137
    assert int(idx.min()) >= 0 and int(idx.max()) < 1000
    assert torch.equal(idx, random_coordinates(1000, 137, seed=5))
    with pytest.raises(ValueError):
        random_coordinates(10, 11, seed=0)


@pytest.mark.parametrize("targets", [[500, 50, 7], [999], [1, 2, 3], [300, 300, 17]])
def test_prune_schedule_hits_every_target_and_respects_the_fraction(targets):
    counts = prune_schedule(1000, targets, 0.2)
    assert set(targets) <= set(counts)
    prev = 1000
    for c in counts:
        assert c < prev
        assert prev - c <= max(1, int(0.2 * prev) + 1)
        prev = c
    assert counts[-1] == min(targets)


def test_magnitude_keep_global_keeps_the_largest():
    w = torch.tensor([[0.1, -5.0, 3.0, 0.2, -0.05, 4.0]])
    mask = torch.ones_like(w, dtype=torch.bool)
    new = magnitude_keep(w, mask, 3)
    assert new.tolist() == [[False, True, True, False, False, True]]


def test_magnitude_keep_never_revives_pruned_and_holds_nonprunable():
    w = torch.tensor([[9.0, 8.0, 0.1, 0.2, 0.3]])
    mask = torch.tensor([[False, True, True, True, True]])
    prunable = torch.tensor([True, True, True, True, False])
    new = magnitude_keep(w, mask, 3, prunable)
    assert new.tolist() == [[False, True, False, True, True]]


def test_magnitude_keep_per_layer_is_exact_and_proportional():
    torch.manual_seed(0)
    w = torch.randn(2, 100)
    w[:, :50] *= 100  # the first layer dominates a global ranking
    mask = torch.ones(2, 100, dtype=torch.bool)
    layers = [slice(0, 50), slice(50, 100)]
    new = magnitude_keep(w, mask, 31, layers=layers)
    assert new.sum(1).tolist() == [31, 31]
    assert all(int(new[k, 50:].sum()) in (15, 16) for k in range(2))
    glob = magnitude_keep(w, mask, 31)
    assert int(glob[:, 50:].sum()) == 0


def test_imp_lands_exactly_on_every_requested_d_with_one_schedule():
    D, K = 2000, 3
    targets = [1000, 250, 31, 5]
    calls = []

    def train(mask):
        calls.append(int(mask[0].sum()))
        g = torch.Generator().manual_seed(len(calls))
        return torch.randn(K, D, generator=g) * mask  # pruned weights are 0, as training leaves them

    masks, rounds = iterative_magnitude_pruning(train, K, D, targets, fraction=0.2)
    assert sorted(masks) == sorted(targets)
    for d, m in masks.items():
        assert m.shape == (K, D) and m.sum(1).tolist() == [d] * K
    # Nested: each later mask is inside the earlier one.
    ordered = [masks[d] for d in sorted(targets, reverse=True)]
    for big, small in zip(ordered, ordered[1:]):
        assert bool((small <= big).all())
    assert len(calls) == rounds[5] == len(prune_schedule(D, targets, 0.2))
    assert calls[0] == D
