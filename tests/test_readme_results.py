"""The README publishes what the committed results hold: every row of its result tables is a row of the
committed result's own tables, cell for cell.

CI proves that the committed results regenerate from main (`verify`, and test_results_fresh for the ones it
does not re-run); this proves that the README copies them, so a re-published result whose README was not
updated in the same change fails here instead of going unnoticed.

The tables of the default run, the mnist5k run and predict are checked cell by cell. Every other number
of a results section (two significant digits or more) must be one of the committed files of the folders
the section cites (`CITES`), in some rounding, or be listed in `ELSEWHERE` with why it is not; a wall time
("M min S s", "H h M min") must be one their provenance.json records (a stage, all stages, or the run's
working stages), to the second or, where no seconds are given, to the minute. That is a membership test: a
moved number fails it unless its new value happens to occur elsewhere in those files.
"""
import csv
import functools
import itertools
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from benchmark.runner import provenance
from leaderboards import paired

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


# Where results are published, each with the committed folders whose numbers it states: a README section
# by its title, or a result's own README.md by its path.
CITES = {
    "Results of the default benchmark": ("mnist1d-mlp", "mnist1d-mlp-pruning"),
    "Results on real digits, offline": ("mnist5k-lenet5", "mnist5k-conv2"),
    "Theory check: predicted vs measured threshold dimension": ("theory",),
    "Predicting d*90 before training: theory on real networks": (
        "predict", "predict-mnist1d-mlp", "predict-mnist1d-mlp-exact", "predict-burnin", "predict-mnist5k-conv2",
        "mnist1d-mlp", "invariance", "burnin", "mnist5k-conv2"),
    "Packing several tasks into one network": ("packing",),
    "Transformers and text: is D/d*90 larger for attention models?": ("architectures",),
    "Is d*90 a property of the task? Model size and burn-in time": ("invariance", "burnin"),
    **{f"leaderboards/results/{f}/README.md": (f,) for f in ("mnist1d-mlp", "mnist1d-mlp-pruning", "mnist5k-lenet5",
                                                             "mnist5k-conv2")},
}
# What a place states that no committed file holds, each with why: an earlier version the text names as
# such, a citation, a setting or a fact of the data or the machine, arithmetic on published numbers, a
# bench measurement. Everything else it states must be a number of the folders it cites.
EARLIER = "an earlier version of the result, named as such in the text"
MLFLOW = "per seed or per member, in the run's MLflow store (which verify regenerates), not in its committed files"
PAIR = MLFLOW + ": a paired accuracy difference of non-adjacent methods (paired.csv has adjacent pairs)"
FACTS = {  # everywhere
    "24": "the machine's 24 GiB",
    "5,000": "a dataset's size", "3,600": "MNIST-1D's train split", "400": "MNIST-1D's validation split",
    "1,000": "a test split's size", "3,500": "mnist5k's train split", "500": "mnist5k's validation split",
    "1,294": "digits' train split", "359": "digits' test split", "60,000": "full MNIST's train split",
}
ELSEWHERE: dict[str, dict[str, str]] = {
    "Results of the default benchmark": {
        "-0.125": PAIR, "0.207": PAIR, "0.246": PAIR, "0.272": PAIR, "0.346": PAIR, "0.386": PAIR,
        "0.650": MLFLOW + ": a seed's reference test accuracy",
        "0.607": MLFLOW + ": the interval of the reference's seeds", "0.669": MLFLOW + ": the same interval",
        "0.981": MLFLOW + ": a train accuracy", "0.972": MLFLOW + ": a train accuracy",
        "0.918": MLFLOW + ": a train accuracy", "0.883": MLFLOW + ": a train accuracy",
        "60": EARLIER + " (epochs=60)", "0.987": EARLIER, "0.654": EARLIER,
        "486,720": "arithmetic: 15,210 weights x 32 bits", "12,332": "arithmetic: log2 C(15,210, 3,802), SNIP's mask",
        "21": "a citation (ICLR'21)",
    },
    "Results on real digits, offline": {
        "1,008": EARLIER, "355": EARLIER, "99": EARLIER, "0.272": EARLIER, "1,253": EARLIER, "484": EARLIER,
        "1,160": EARLIER, "758": EARLIER, "97": "arithmetic: 1 - 1/32 pruned", "21.9": EARLIER + " (the killed run)",
        "8,000": EARLIER + " (the killed run)"},
    "Theory check: predicted vs measured threshold dimension": {"2014": "a citation's year"},
    "Packing several tasks into one network": {
        "2021": "a citation's year", "1.4": "a bound on packing.md's gᵀδ column (largest 1.348)"},
    "Transformers and text: is D/d*90 larger for attention models?": {
        "15": "the study's time budget (15 minutes) and a bench time (15 ms)",
        "4.3": "a bench measurement (ms per member) and arithmetic (D/d*90)",
        "1.41": "arithmetic: D / the largest d, 8,512 / 6,019", "1.64": "arithmetic: 4.597 - 2.959 bits",
        "628": "the settings: 4 epochs of 20,000 windows", "3.21": EARLIER, "6,020": EARLIER, "4.46": EARLIER,
        "3.64": EARLIER},
    "Is d*90 a property of the task? Model size and burn-in time": {
        "330": "the settings: 30 epochs of batch 128",
        "2018": "a citation's year", "2022": "a citation's year", "650": "a citation: Li et al.'s MNIST thresholds",
        "1,300": "a round range of the table's values"},
    "Predicting d*90 before training: theory on real networks": {
        "2022": "a citation's year", "1,351": "arithmetic: slq_products at --probes 2, 2·(2 + 2)·150 + 1 + 150",
        "3,151": "arithmetic: slq_products at the defaults, 2·(8 + 2)·150 + 1 + 150",
        "6,918": "a measurement the text describes (predict --probes 2 on the default preset), not committed",
        "1,315": "arithmetic: 6,869 - 5,554, the slq and the exact route's d*90 on the default MLP",
        "8.6": "arithmetic: 1,315 / 15,210 (D)"},
    "leaderboards/results/mnist1d-mlp/README.md": {
        "1024": "a ratio left out of the grid", "15": "the time budget, 15 minutes",
        "0.607": MLFLOW + ": the interval of the reference's seeds", "0.669": MLFLOW + ": the same interval", "4,949": EARLIER, "9 min 8 s": "end to end: the stages and start-up",
        "13 min 48 s": EARLIER + " (its machine)", "21.9": MLFLOW + ": a part of the preparation stage",
        "13.9": MLFLOW + ": a part of the preparation stage", "2.7": MLFLOW + ": a part of the preparation stage"},
    "leaderboards/results/mnist1d-mlp-pruning/README.md": {
        "0.346": PAIR, "0.386": PAIR, "18": "a rough time to regenerate"},
    "leaderboards/results/mnist5k-lenet5/README.md": {
        "0.272": EARLIER, "0.856": EARLIER, "0.972": EARLIER, "0.996": EARLIER, "1,160": EARLIER, "1,253": EARLIER,
        "348": EARLIER, "461": EARLIER, "484": EARLIER, "758": EARLIER, "12.4": EARLIER + " (before issue 34's fix)",
        "97": "arithmetic: 1 - 1/32 pruned", "64": "a burn-in t of the burnin study"},
    "leaderboards/results/mnist5k-conv2/README.md": {
        "127": EARLIER + " (the killed run's population)", "21.9": EARLIER + " (the killed runs)",
        "24.3": EARLIER + " (the killed runs)", "40": "a rough part of a stage (minutes shared with other work)", "8,000": EARLIER + " (the killed runs)"},
}

NUMBER = re.compile(r"(?<![\w.])[-+−]?\d+(?:,\d{3})*(?:\.\d+)?(?!\w)(?!\.\d)")  # not a version, 2.14.1
# in CSV and JSON a comma separates values, never thousands, and a float may have an exponent
DATA_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?!\w)(?!\.\d)")
# not numbers of a result: commands and names in code spans, layer widths (40-100-100-10), issue numbers
NOT_RESULTS = re.compile(r"`[^`]*`|\d+(?:-\d+){2,}|issue \d+|AVX-512|(?<![\d.])(?:\d+ h )?\d+ min\b(?: \d+ s\b)?")
WALL = re.compile(r"(?<![\d.])(?:(\d+) h )?(\d+) min\b(?: (\d+) s\b)?")  # checked against provenance.json, not as numbers


def numbers(text: str) -> list[str]:
    """The numbers a text states, signs as ASCII; a single significant digit ('3 seeds', '0.9') is left out:
    it matches by chance."""
    found = (m.group(0).replace("−", "-").lstrip("+") for m in NUMBER.finditer(text))
    return [n for n in found if len(n.replace(",", "").replace(".", "").lstrip("-0")) >= 2]


def _forms(x: float) -> set[str]:
    """x as the README may round it: 0 to 4 decimals, with and without thousands separators."""
    return {f"{x:{sep}.{k}f}" for k in range(5) for sep in ("", ",")}


def _seed_bounds(cell: str) -> np.ndarray:
    """leaderboard.csv's dstar90_seeds ('1895.98;<=1;>3802') -> per-seed (low, high) bounds (S, 2)."""
    def one(v):
        return (0.0, float(v[2:])) if v.startswith("<=") else (float(v[1:]), math.inf) if v.startswith(">") else (float(v),) * 2
    return np.array([one(v) for v in cell.split(";")])


def wall_times(folder: str) -> list[float]:
    """Seconds a committed result's provenance.json records: each stage, all of them, and a run's four
    working stages (reference, preparation, members, extension: 'the run's stages' without setup and publish)."""
    walls = provenance.read(RESULTS / folder).get("wall_s", {})
    working = sum(v for k, v in walls.items() if k not in ("setup", "publish"))
    return [*walls.values(), sum(walls.values()), working]


@functools.cache  # several places cite the same folder
def committed_numbers(folder: str) -> set[str]:
    """Every number of the files a committed run or study wrote (its hand-written README.md aside), in
    every rounding; wall times in minutes and hours, peak memory in GB; and for a run every paired d*90
    comparison of two of its methods (the README compares more pairs than paired.csv's adjacent ones; the
    per-seed thresholds they come from are in leaderboard.csv)."""
    root = RESULTS / folder
    out = set()
    for path in root.iterdir():
        if path.suffix in (".md", ".csv", ".json", ".html") and path.name != "README.md":
            text = path.read_text()
            for n in DATA_NUMBER.findall(text) if path.suffix in (".csv", ".json") else numbers(text):
                out |= {n} | _forms(float(n.replace(",", "")))
    for w in wall_times(folder):
        out |= _forms(w) | _forms(w / 60) | _forms(w / 3600)
    for mb in provenance.read(root).get("peak_rss_mb", {}).values():
        out |= _forms(mb / 1000) | _forms(mb / 1024)
    if (root / "leaderboard.csv").is_file():
        with open(root / "leaderboard.csv", newline="") as fh:
            seeds = {r["method"]: _seed_bounds(r["dstar90_seeds"]) for r in csv.DictReader(fh) if r["dstar90_seeds"]}
        for a, b in itertools.permutations(seeds, 2):
            p = paired.paired_log_threshold(seeds[a], seeds[b])
            out |= set().union(*(_forms(v) for v in (p.mean, p.low, p.high, *paired.factor(p)) if math.isfinite(v)))
    return out


def published(where: str) -> str:
    return (ROOT / where).read_text() if where.endswith(".md") else section(where)


@pytest.mark.parametrize("where", sorted(CITES))
def test_every_number_a_place_publishes_is_a_committed_one(where):
    text, folders = published(where), CITES[where]
    pool, other = set().union(*(committed_numbers(f) for f in folders)), {**FACTS, **ELSEWHERE.get(where, {})}
    stated = numbers(NOT_RESULTS.sub("", text))
    missing = sorted({n for n in stated if n not in pool and n.lstrip("-") not in pool} - set(other))
    assert not missing, (f"{where}: {', '.join(missing)} is in no file of leaderboards/results/{{{', '.join(folders)}}}: "
                         f"re-read it from the committed result, or say in ELSEWHERE why it is not there")
    walls = [w for f in folders for w in wall_times(f)]
    for match in WALL.finditer(text):
        said, (h, m, sec) = match.group(0), (int(g or 0) for g in match.groups())
        rounding = 1 if match.group(3) else 30  # "17 min": to the minute
        assert said in other or any(abs(3600 * h + 60 * m + sec - w) < rounding for w in walls), (
            f"{where}: {said} is no wall time of the provenance.json of leaderboards/results/{{{', '.join(folders)}}}")
    stale = sorted(n for n in ELSEWHERE.get(where, {}) if n not in stated and n not in text)
    assert not stale, f"{where}: ELSEWHERE lists {', '.join(stale)}, which it no longer states"
