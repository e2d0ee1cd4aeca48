"""The layout is the architecture: benchmark/ is a few wings, imports flow one way (down the list below),
no module imports itself back through others, and the libraries (subspaces, baselines, leaderboards)
never import the harness. Read from the source (ast), so a circle that only runs lazily is still one."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ("benchmark", "subspaces", "baselines", "leaderboards")
# The wings of benchmark/, lowest first: a module may import its own wing and those before it, never one after.
WINGS = ("core", "data", "models", "training", "methods", "config", "runner", "studies", "verbs")
STUDY_FILES = {"__init__.py", "experiment.py", "cli.py", "report.py"}


def modules() -> dict[str, Path]:
    """{dotted module name: file} of every project module (a package by its __init__)."""
    out = {}
    for package in PROJECT:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The project modules `path` imports anywhere in its body (function-local imports included)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:  # `from pkg import submodule` is an edge to the submodule
                sub = f"{node.module}.{a.name}"
                out.add(sub if sub in known else node.module)
    return {m for m in out if m in known}


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(path, set(mods)) - {name} for name, path in mods.items()}


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None (depth-first search, colouring nodes)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def wing(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "benchmark" and len(parts) > 1 and parts[1] in WINGS else None


def test_circle_finder_finds_a_circle_and_accepts_a_tree():
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_circle():
    assert find_circle(import_graph()) is None


def test_imports_flow_down_the_wings():
    upward = [f"{m} imports {t}" for m, targets in import_graph().items() if wing(m)
              for t in targets if wing(t) and WINGS.index(wing(t)) > WINGS.index(wing(m))]
    assert upward == []


def test_libraries_never_import_the_harness_nor_hydra_or_mlflow():
    graph = import_graph()
    assert [f"{m} imports {t}" for m, ts in graph.items() if m.split(".")[0] != "benchmark"
            for t in ts if t.split(".")[0] == "benchmark"] == []
    for package in ("subspaces", "baselines"):  # usable on any torch model, without the harness's tools
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text()
            assert not any(f"import {lib}" in text or f"from {lib}" in text for lib in ("hydra", "mlflow", "omegaconf")), path


def test_benchmark_has_at_most_twelve_entries_and_every_wing_is_a_package():
    entries = sorted(p.name for p in (ROOT / "benchmark").iterdir() if p.name != "__pycache__")
    assert len(entries) <= 12, entries
    assert all((ROOT / "benchmark" / w / "__init__.py").is_file() for w in WINGS)


@pytest.mark.parametrize("study", sorted(p.name for p in (ROOT / "benchmark" / "studies").iterdir()
                                          if (p / "__init__.py").is_file()))
def test_every_study_has_the_same_shape(study):
    files = {p.name for p in (ROOT / "benchmark" / "studies" / study).glob("*.py")}
    assert files == STUDY_FILES, f"{study}: {sorted(files)}; a study is experiment.py, cli.py and report.py"


def test_project_modules_are_imported_statically():
    """No importlib on the project's own modules (a circle no reading sees), except the lazy verb registry."""
    lazy = {"benchmark/__main__.py", "benchmark/verbs/verify.py"}
    users = {str(p.relative_to(ROOT)) for p in modules().values() if "importlib.import_module" in p.read_text()}
    assert users <= lazy, users - lazy


def test_every_verb_in_the_registry_resolves_to_a_function():
    import importlib

    from benchmark.verbs import VERBS

    for verb, (target, _, what) in VERBS.items():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), verb
        assert what, verb
