"""The extension wave: extra d for a method only where the tested ratios do not bracket its threshold."""
import math

import pytest

from benchmark.config.build import build_config
from benchmark.runner.extension import extension_ratios, extra_dims, plan_extension
from leaderboards.threshold import crossing
from tests.test_cli import _raw

D = 15_210


def _curve(d_star: float):
    """A synthetic accuracy curve, increasing in d, that crosses 0.9 exactly at d = d_star."""
    return lambda d: 0.9 * (d / d_star) ** 0.1 if d < d_star else 0.9 + 0.05 * (1 - d_star / d)


@pytest.mark.parametrize("d_star, side", [(3.0, "down"), (7_000.0, "up")])
def test_the_wave_brackets_a_synthetic_threshold_the_grid_missed(d_star, side):
    acc, target = _curve(d_star), 0.9
    tested = [15, 59, 238, 951, 3802]
    reached = [acc(d) >= target for d in tested]
    assert all(reached) if side == "down" else not any(reached)  # the grid alone leaves it open
    ratios = extension_ratios({"m": (tested, [acc(d) for d in tested])}, target, D, max_dims=2)
    added = sorted(round(D / r) for r in ratios["m"])
    assert len(added) == 2 and all(1 <= d < D and d not in tested for d in added)
    ds = sorted(tested + added)
    accs = [acc(d) for d in ds]
    t = crossing(ds, accs, target)
    below = [d for d, a in zip(ds, accs) if a < target]
    assert below and t is not None and t > min(ds)  # bracketed: a tested d misses, a larger one reaches
    assert max(d for d in ds if d <= t) <= d_star <= min(d for d in ds if d >= t) * 1.0001


def test_bracketed_thresholds_get_no_extra_d_and_the_cap_holds():
    assert extra_dims([15, 59, 238], [False, True, True], D, 2) == []
    assert extra_dims([15, 59], [True, True], D, 2) == [1, 4]
    assert extra_dims([15, 59], [True, True], D, 1) == [1]
    assert extra_dims([1, 59], [True, True], D, 3) == []  # already at d = 1: an open bound, nothing to add
    up = extra_dims([15, 3802], [False, False], D, 3)
    assert len(up) == 3 and 3802 < up[0] < up[-1] < D
    # A d where every seed failed (NaN) neither reaches nor misses.
    assert extension_ratios({"m": ([15, 59], [math.nan, 0.95])}, 0.9, D, 2) == {"m": [D / 1, D / 8]}


def test_the_wave_never_goes_below_a_methods_smallest_d():
    # SAID on a model of 16 layers needs d >= 17: the wave goes down to 17, not to 1 (FAILED members)
    assert extra_dims([400, 1600], [True, True], D, 2, min_d=17) == [17, 82]
    assert extra_dims([17, 400], [True, True], D, 2, min_d=17) == []  # already at its smallest d
    ratios = extension_ratios({"said": ([400], [0.95]), "random_affine": ([400], [0.95])}, 0.9, D, 1,
                              min_dims={"said": 17})
    assert ratios == {"said": [D / 17], "random_affine": [D / 1]}


def test_said_smallest_d_is_its_layers_plus_one():
    from benchmark.methods import min_dim
    from benchmark.models import create_model
    from subspaces import FlatModel
    from subspaces.said import layer_slices

    flat = FlatModel.of(create_model("transformer", (1, 40), 10, width=16, depth=1))
    assert min_dim("said", flat) == min_dim("pretrained_said", flat) == len(layer_slices(flat.names, flat.slices)) + 1
    assert min_dim("random_affine", flat) == min_dim("lottery_ticket", flat) == 1


def _records(curves: dict, seeds=(0, 1), lr=0.01):
    out = []
    for method, points in curves.items():
        for ratio, acc in points:
            for s in seeds:
                out.append(dict(method=method, ratio=ratio, d=round(D / ratio), D=D, seed=s, lr=lr, status="FINISHED",
                                val_acc=acc, val_loss=1.0, test_acc=0.5, train_acc=1.0))
    return out


def test_plan_extension_adds_cells_with_every_seed_and_candidate_lr_and_obeys_the_switch():
    """Decided on validation accuracy (the records' test_acc is a constant 0.5 that would bracket nothing)."""
    recs = _records({"full": [(1.0, 0.8)], "random_affine": [(4.0, 0.5), (16.0, 0.4)],
                     "lottery_subspace": [(4.0, 0.79), (16.0, 0.78)], "lottery_ticket": [(4.0, 0.75), (16.0, 0.6)]})
    base = ["methods=[random_affine,lottery_subspace,lottery_ticket]", "ratios=[1,4,16]", "seeds=[0,1]",
            "lr_grid=[0.3,1,3]"]
    cells = plan_extension(build_config(_raw(base)), recs, D)
    assert {c.method for c in cells} == {"random_affine", "lottery_subspace"}  # the ticket is bracketed
    assert {c.d for c in cells if c.method == "lottery_subspace"} == {1, round(951 ** 0.5)}
    assert all(D / 4 < c.d < D for c in cells if c.method == "random_affine")
    for m in ("random_affine", "lottery_subspace"):
        per = {}
        for c in cells:
            if c.method == m:
                per.setdefault(c.d, set()).add((c.seed, c.lr))
        assert all(len(v) == 2 * 3 for v in per.values()) and len(per) == 2
    assert plan_extension(build_config(_raw(base + ["extension.enabled=false"])), recs, D) == []
    assert len(plan_extension(build_config(_raw(base + ["extension.max_dims=1"])), recs, D)) == 2 * 2 * 3


def test_language_modelling_waves_target_the_loss_saved_over_the_unigram_model():
    """Accuracy says the random subspace reached 90% at both d (go down); the loss saved over the unigram
    model (floor 4 nats, reference 2: a gain of 2) says it reached neither (3.0 and 2.5 save 1.0, 1.5 < 1.8):
    the wave goes up, as the bits leaderboard will read it."""
    recs = _records({"full": [(1.0, 0.50)], "random_affine": [(4.0, 0.48), (16.0, 0.47)]})
    loss = {1.0: 2.0, 4.0: 2.5, 16.0: 3.0}
    recs = [dict(r, val_loss=loss[r["ratio"]]) for r in recs]
    cfg = build_config(_raw(["methods=[random_affine]", "ratios=[1,4,16]", "seeds=[0,1]", "lr_grid=[1]",
                             "extension.max_dims=1"]))
    assert {c.d for c in plan_extension(cfg, recs, D)} == {1}
    assert all(c.d > D / 4 for c in plan_extension(cfg, recs, D, floor_loss=4.0))
    assert len(plan_extension(cfg, recs, D, floor_loss=4.0)) == 2  # one d, two seeds, one lr
