"""The README's "Adding a method / a dataset" examples, run as they are written there: a reader who copies
them gets a registered method and a dataset that trains, with the import paths of today's layout."""
from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest
import torch
import yaml

import benchmark.data.shipped as shipped
from benchmark.config.build import build_config
from benchmark.config.compose import compose
from benchmark.data import DATASETS, load_dataset
from benchmark.methods import DIRECTIONS, METHODS
from benchmark.models import create_model
from benchmark.training.loop import Group, TrainConfig, evaluate, train_population
from subspaces import FlatModel, IdentityProjection, Subspace
from tests.test_overrides import parsed

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def block(language: str, first_line: str) -> str:
    """The README's ```language block whose first line starts with first_line."""
    blocks = re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)
    found = [b for b in blocks if b.startswith(first_line)]
    assert len(found) == 1, f"README has {len(found)} {language} blocks starting with {first_line!r}"
    return found[0]


def added_lines(diff: str, path: str) -> str:
    """The lines a unified diff adds to `path` (after its +++ header, up to the next file)."""
    part = diff.split(f"+++ b/{path}\n", 1)[1].split("\n--- ", 1)[0]
    return "\n".join(line[1:] for line in part.splitlines() if line.startswith("+")) + "\n"


@pytest.fixture
def unregister():
    before = set(DIRECTIONS), set(METHODS), set(DATASETS)
    yield
    for registry, names in zip((DIRECTIONS, METHODS, DATASETS), before):
        for name in set(registry) - names:
            del registry[name]


def test_adding_a_method_as_the_readme_writes_it(unregister):
    exec(compile(block("python", "# benchmark/methods/head.py"), "benchmark/methods/head.py", "exec"), {})
    assert METHODS["head_only"].family == "pruning" and METHODS["head_only_t"].anchor == "wt"
    anchor = torch.arange(10.0)
    sub = DIRECTIONS["last_coordinates"].build(None, METHODS["head_only"], 3, anchor, "auto")
    assert sub.d == 3
    w = sub.weights(torch.ones(1, 3))  # θ = 1 moves exactly the last three coordinates
    assert torch.equal(w[0, :7], torch.zeros(7)) and torch.equal(w[0, 7:], anchor[7:] + 1)


def test_adding_a_dataset_as_the_readme_diff_writes_it(unregister):
    diff = block("diff", "--- a/benchmark/data/shipped.py")
    exec(compile(added_lines(diff, "benchmark/data/shipped.py"), "benchmark/data/shipped.py", "exec"), vars(shipped).copy())
    cfg = yaml.safe_load(added_lines(diff, "benchmark/conf/dataset/iris.yaml"))
    assert "iris" in DATASETS and DATASETS["iris"].offline
    data = load_dataset(cfg)
    assert data.input_shape == (1, 4) and data.num_classes == 3
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (96, 24, 30)
    torch.manual_seed(0)
    flat = FlatModel.of(create_model("mlp", data.input_shape, data.num_classes, hidden=[16]))
    w0 = flat.flatten()[None]
    res = train_population(flat, [Group(Subspace(w0, IdentityProjection(1, flat.D)), 1e-2, (0,))], data,
                           TrainConfig(epochs=30, batch_size=16, lr=1e-2))
    chance = float(evaluate(flat, w0, data.x_test, data.y_test, 512)[0][0])
    assert res.metrics[0]["test_acc"] > 0.8 > chance


def readme_commands() -> list[tuple[str, list[str]]]:
    """(verb, argv) of every `python -m benchmark VERB ...` of the README (code blocks and inline code), continuation
    lines joined, comments dropped, placeholders filled."""
    out = []
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", README, flags=re.S)
    inline = re.findall(r"`(python -m benchmark [^`]*)`", re.sub(r"```.*?```", "", README, flags=re.S))
    for code in blocks + inline:
        for line in code.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if not line.startswith("python -m benchmark "):
                continue
            for placeholder, value in (("<RUN_ID>", "0123abcd"), ("<partition>", "gpu"), ("<server>", "localhost"),
                                       ("FOLDER", "leaderboards/results/smoke")):
                line = line.replace(placeholder, value)
            verb, *argv = shlex.split(line)[3:]
            if verb != "VERB":  # the prose's placeholder for any verb
                out.append((verb, argv))
    return out


def first_of_each_sweep(argv: list[str]) -> list[str]:
    """A multirun's overrides as one job's: -m dropped, `key=a,b` -> `key=a` (brackets kept whole)."""
    return [o if "[" in o else re.sub(r"=([^,]*),.*$", r"=\1", o) for o in argv if o != "-m"]


def test_every_command_in_the_readme_parses(monkeypatch, unregister):
    """Every override and flag the README shows is still accepted: run's are composed and validated (not
    run), the other verbs' are parsed by the verb itself (stopped before it does anything)."""
    exec(compile(block("python", "# benchmark/methods/head.py"), "head.py", "exec"), {})  # methods=[head_only]
    commands = readme_commands()
    assert {v for v, _ in commands} >= {"run", "list", "bench", "pack", "theory", "architectures", "verify",
                                        "reproduce", "leaderboard", "golden"}
    for verb, argv in commands:
        if verb == "run":
            cfg = build_config(compose([o for o in first_of_each_sweep(argv) if not o.startswith("hydra")]))
            assert cfg.seeds, argv
        elif verb == "list":
            assert argv == []
        else:
            assert isinstance(parsed(verb, argv, monkeypatch), argparse.Namespace), (verb, argv)
