"""The README publishes what the committed results hold: every row of its result tables is a row of the
committed result's own tables, cell for cell.

CI proves that the committed results regenerate from main (`verify`, and test_results_fresh for the ones it
does not re-run); this proves that the README copies them, so a re-published result whose README was not
updated in the same change fails here instead of going unnoticed.
"""
import csv
import json
import math
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
RESULTS = ROOT / "leaderboards" / "results"


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end > 0 else None]


def table_rows(markdown: str) -> list[list[str]]:
    """The body rows of every markdown table (not its header or separator), cells stripped."""
    lines = markdown.splitlines()
    sep = lambda line: bool(re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", line.strip()))
    return [[c.strip() for c in line.strip()[1:-1].split("|")] for i, line in enumerate(lines)
            if line.startswith("|") and not sep(line) and not (i + 1 < len(lines) and sep(lines[i + 1]))]


def halves(row: list[str]) -> list[list[str]]:
    """A side-by-side table's row (two tables joined by an empty cell) as its two rows; else the row."""
    if "" in row[1:-1]:
        i = row.index("", 1)
        if row[i + 1 :] and row[i + 1].isdigit():
            return [row[:i], row[i + 1 :]]
    return [row]


@pytest.mark.parametrize("title, folder", [("Results of the default benchmark", "mnist1d-mlp"),
                                           ("Results on real digits, offline", "mnist5k-lenet5")])
def test_the_readme_tables_of_a_run_are_its_committed_leaderboard(title, folder):
    committed = table_rows((RESULTS / folder / "leaderboard.md").read_text())
    # the bits tables' rows are (rank, method, bits*90) in the committed file, with the crossing beside
    prefixes = {tuple(r[:3]) for r in committed}
    published = table_rows(section(title).split("**The paper's Conv-2 preset")[0])
    assert len(published) >= 6, f"no result table found in the README's section {title!r}"
    for row in published:
        for part in halves(row):
            assert part in committed or tuple(part) in prefixes, (
                f"README, {title!r}: the row {' | '.join(part)!r} is not in leaderboards/results/{folder}/leaderboard.md: "
                f"re-read the README's numbers from the committed result")


def test_the_readme_default_result_prose_states_the_committed_reference():
    f = json.loads((RESULTS / "mnist1d-mlp" / "findings.json").read_text())["reference"]
    text = section("Results of the default benchmark")
    assert (f"train accuracy {f['train_acc']:.3f} and test accuracy {f['test_acc']:.3f}" in text
            and f"the 90% target is {f['target']:.3f}" in text), "the README's reference accuracy is not the committed one"


def _predict_rows(folder: str) -> list[dict]:
    with open(RESULTS / folder / "predict.csv", newline="") as fh:
        return [r for r in csv.DictReader(fh) if r["kind"] == "target90"]


def _n(x: str) -> float:
    return float(x.replace(",", "").rstrip("x"))


def test_the_readme_predict_tables_are_the_committed_predictions():
    text = section("Predicting d*90 before training: theory on real networks")
    tables = re.findall(r"(?m)(?:^\|.*\n)+", text)
    by_model = {r["model"]: r for r in _predict_rows("predict")}
    grid = table_rows(next(t for t in tables if t.startswith("| model | D | predicted d*90 | real")))
    assert {r[0] for r in grid} == set(by_model)
    for model, D, pred, real, _, distance, ntk in grid:
        r = by_model[model]
        assert _n(D) == int(r["D"]) and _n(pred) == round(float(r["predicted_d"])), (model, pred, r["predicted_d"])
        assert _n(real) == round(float(r["real_d90_random_affine"])), (model, real)
        assert _n(distance) == round(float(r["drift_distance"]), 2) and _n(ntk) == round(float(r["drift_ntk_change"]))
    by_t = {int(r["t"]): r for r in _predict_rows("predict-burnin")}
    burn = table_rows(next(t for t in tables if t.startswith("| t |")))
    assert {int(r[0]) for r in burn} == set(by_t)
    for t, loss, pred, real, distance, ntk in burn:
        r = by_t[int(t)]
        assert math.isclose(_n(loss), float(r["initial_loss"]), rel_tol=0.01, abs_tol=0.006), (t, loss)
        assert _n(pred) == round(float(r["predicted_d"])), (t, pred)
        if real.startswith("θ = 0"):
            assert r["real_d90_at_theta0"], t
        else:
            assert _n(real) == round(float(r["real_d90_burn_in_affine"] or r["real_d90_random_affine"])), (t, real)
        assert _n(distance) == round(float(r["drift_distance"]), 2), (t, distance)
        assert math.isclose(_n(ntk), float(r["drift_ntk_change"]), rel_tol=0.05, abs_tol=0.5), (t, ntk)
    by_t = {int(r["t"]): r for r in _predict_rows("predict-mnist5k-conv2")}
    conv = table_rows(next(t for t in tables if t.startswith("| t | L(w_t) (squared) | rank r")))
    assert {int(r[0]) for r in conv} == set(by_t)
    for t, loss, rank, eps90, pred, real, distance, ntk in conv:
        r = by_t[int(t)]
        assert _n(rank) == int(r["rank"]) and _n(eps90) == round(float(r["eps_fraction"]), 3), (t, rank, eps90)
        assert math.isclose(_n(loss), float(r["initial_loss"]), rel_tol=0.01) and _n(pred) == round(float(r["predicted_d"]))
        if real.startswith("θ = 0"):
            assert r["real_d90_at_theta0"], t
        else:
            assert _n(real.split()[0]) == round(float(r["real_d90_random_affine"])), (t, real)
        ntk_r = float(r["drift_ntk_change"])
        assert _n(distance) == round(float(r["drift_distance"]), 2) and _n(ntk) == round(ntk_r, 1 if ntk_r >= 10 else 2)
