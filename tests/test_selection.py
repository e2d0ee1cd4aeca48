"""Learning rates chosen on validation: the rule, and that the test split plays no part in it."""
import math
import os

import pytest

from benchmark.config.build import build_config
from leaderboards import build
from leaderboards.selection import FAILED, mark, select, selected_only
from tests.test_cli import _raw


def _rec(method, ratio, lr, seed, val_acc, val_loss=1.0, test_acc=0.5, status="FINISHED"):
    return dict(method=method, ratio=ratio, d=10, D=100, seed=seed, lr=lr, status=status, val_acc=val_acc,
                val_loss=val_loss, test_acc=test_acc, train_acc=0.9, prep_steps=0)


def test_the_highest_seed_mean_final_val_acc_is_selected_and_test_metrics_play_no_part():
    records = [_rec("random_affine", 4.0, 0.01, 0, 0.50, test_acc=0.9), _rec("random_affine", 4.0, 0.01, 1, 0.70),
               _rec("random_affine", 4.0, 0.03, 0, 0.62, test_acc=0.1), _rec("random_affine", 4.0, 0.03, 1, 0.62)]
    assert select(records) == {("random_affine", 4.0): 0.03}  # mean 0.62 > 0.60
    shuffled = [dict(r, test_acc=1 - r["test_acc"], test_loss=123.0) for r in records]
    assert select(shuffled) == select(records)
    kept = selected_only(records)
    assert [(r["lr"], r["seed"]) for r in kept] == [(0.03, 0), (0.03, 1)]
    assert [r["selected"] for r in mark(records)] == [False, False, True, True]


def test_a_candidate_with_a_diverged_seed_cannot_be_selected():
    records = [_rec("full", 1.0, 0.1, 0, 0.99), _rec("full", 1.0, 0.1, 1, math.nan, status="FAILED"),
               _rec("full", 1.0, 0.01, 0, 0.40), _rec("full", 1.0, 0.01, 1, 0.40)]
    assert select(records) == {("full", 1.0): 0.01}


def test_ties_go_to_the_lower_val_loss_then_the_smaller_lr():
    tie = [_rec("full", 1.0, 0.01, 0, 0.5, val_loss=0.9), _rec("full", 1.0, 0.03, 0, 0.5, val_loss=0.8)]
    assert select(tie) == {("full", 1.0): 0.03}
    exact = [_rec("full", 1.0, 0.03, 0, 0.5), _rec("full", 1.0, 0.01, 0, 0.5)]
    assert select(exact) == {("full", 1.0): 0.01}



def test_language_modelling_cells_select_on_the_lowest_val_loss():
    # the lr that overfits in loss has the better accuracy: accuracy would pick it, loss does not
    overfit = [_rec("full", 1.0, 0.03, s, 0.40, val_loss=3.2) for s in (0, 1)]
    fits = [_rec("full", 1.0, 0.01, s, 0.38, val_loss=1.9) for s in (0, 1)]
    assert select(overfit + fits) == {("full", 1.0): 0.03}
    lm = [dict(r, select_on="val_loss") for r in overfit + fits]
    assert select(lm) == {("full", 1.0): 0.01}
    # equal loss: accuracy breaks the tie; a non-finite loss cannot be selected
    tie = [dict(_rec("full", 1.0, lr, 0, acc, val_loss=2.0), select_on="val_loss") for lr, acc in ((0.01, 0.3), (0.03, 0.4))]
    assert select(tie) == {("full", 1.0): 0.03}
    nan = [dict(_rec("full", 1.0, 0.01, 0, 0.5, val_loss=math.nan), select_on="val_loss"),
           dict(_rec("full", 1.0, 0.03, 0, 0.1, val_loss=4.0), select_on="val_loss")]
    assert select(nan) == {("full", 1.0): 0.03}


def test_text_datasets_select_on_loss_and_members_say_so():
    from benchmark.data import offline
    from benchmark.data.registry import selection_metric
    from benchmark.runner.grid import Cell, member_params

    assert selection_metric("pydoc") == selection_metric("wikitext2") == "val_loss"
    assert {selection_metric(n) for n in offline() if n != "pydoc"} == {"val_acc"}
    cfg = build_config(_raw(["dataset=pydoc"]))
    params = member_params(cfg, Cell("full", 1.0, 100, 0, 0.01), 100, None)
    assert params["select_on"] == "val_loss"

def test_a_cell_whose_every_candidate_failed_shows_as_failed():
    records = [_rec("lottery_ticket", 4.0, lr, 0, math.nan, status="FAILED") for lr in (0.01, 0.03)]
    records += [_rec("lottery_ticket", 16.0, 0.01, 0, 0.3), _rec("full", 1.0, 0.01, 0, 0.8, test_acc=0.8)]
    assert select(records)[("lottery_ticket", 4.0)] == FAILED
    lb = build(records)
    row = next(r for r in lb.rows if r.method == "lottery_ticket")
    assert row.lrs == {16.0: 0.01, 4.0: None} and row.acc[4.0]["n"] == 0


def test_shuffled_test_labels_change_no_selection(monkeypatch, tmp_path):
    """End to end: the same run with the test split's labels permuted selects the same lr in every cell."""
    import torch

    import benchmark.runner.context
    from benchmark.data.registry import load_dataset
    from benchmark.data.splits import Splits
    from benchmark.runner.run import run

    raw = _raw(["methods=[full,random_affine,lottery_ticket]", "ratios=[1,16]", "seeds=[0,1]", "epochs=1",
                "dataset.train_size=256", "burn_in_steps=2", "lr_grid=[0.1,1,10]"])

    def shuffled(cfg):
        s = load_dataset(cfg)
        y = s.y_test[torch.randperm(len(s.y_test), generator=torch.Generator().manual_seed(1))]
        return Splits(s.name, s.x_train, s.y_train, s.x_val, s.y_val, s.x_test, y, s.num_classes)

    results = []
    for i, loader in enumerate((load_dataset, shuffled)):
        monkeypatch.setattr(benchmark.runner.context, "load_dataset", loader)
        cfg = build_config(dict(raw, tracking={"uri": f"sqlite:///{tmp_path}/t{i}.db", "experiment": None}))
        results.append(run(cfg, out=open(os.devnull, "w")))
    lrs = [{(row.method, r): lr for row in res["leaderboard"].rows for r, lr in row.lrs.items()} for res in results]
    # Every cell, those of the extension wave included (decided on validation too), selects the same lr.
    assert lrs[0] == lrs[1] and len(lrs[0]) >= 1 + 2 * 1
    test_accs = [{o.cell.name: o.metrics["test_acc"] for o in res["outcomes"]} for res in results]
    assert test_accs[0] != test_accs[1]  # the test split really changed
    val_accs = [{o.cell.name: o.metrics["val_acc"] for o in res["outcomes"]} for res in results]
    assert val_accs[0] == val_accs[1]
    assert results[0]["reference_lr"] == results[1]["reference_lr"]


def test_the_preparation_uses_the_reference_lr_selected_on_validation(monkeypatch, tmp_path):
    import benchmark.runner.prep_cache
    from benchmark.runner.run import run

    seen = []
    real = benchmark.runner.prep_cache.prepare_base

    def spy(seeds, w0, flat, data, train_cfg, *args, **kwargs):
        seen.append(train_cfg.lr)
        return real(seeds, w0, flat, data, train_cfg, *args, **kwargs)

    monkeypatch.setattr(benchmark.runner.prep_cache, "prepare_base", spy)
    # Factors 0.01 and 100 around lr 1e-2 give 1e-4 (barely moves in one epoch) and 1 (diverges or worse).
    raw = _raw(["methods=[full,lottery_ticket_t]", "ratios=[1,16]", "seeds=[0,1]", "epochs=1",
                "dataset.train_size=512", "burn_in_steps=2", "lr_grid=[0.01,1,100]", "extension.enabled=false"])
    result = run(build_config(dict(raw, tracking={"uri": f"sqlite:///{tmp_path}/m.db", "experiment": None})),
                 out=open(os.devnull, "w"))
    full = {}
    for o in result["outcomes"]:
        if o.cell.method == "full":
            full.setdefault(o.cell.lr, []).append(o.metrics["val_acc"])
    best = max((lr for lr, v in full.items() if all(map(math.isfinite, v))), key=lambda lr: sum(full[lr]))
    assert result["reference_lr"] == best == pytest.approx(1e-2)
    assert seen == [best]
    members = [o for o in result["outcomes"] if o.cell.method == "lottery_ticket_t"]
    assert len(members) == 3 * 2  # 3 candidates x 2 seeds at the one ratio
