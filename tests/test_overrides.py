"""One CLI grammar: every verb takes key=value overrides as `run` does, its old flags keep working as
aliases (each verb's pair parses to the same options), and --help lists every key with its default."""
from __future__ import annotations

import argparse
import importlib

import pytest

from benchmark.core import overrides
from benchmark.core.overrides import parse, split_list, translate
from benchmark.verbs import VERBS

# verb -> (the old flags, the same options as key=value): each pair must parse to the same Namespace.
PAIRS = {
    "theory": (["--D", "100", "200", "--draws", "3", "--spike-scale", "5", "--tracking-uri", "sqlite:///x.db",
                "--experiment", "e"],
               ["D=[100,200]", "draws=3", "spike_scale=5", "tracking.uri=sqlite:///x.db", "tracking.experiment=e"]),
    "pack": (["--d", "10", "20", "--model-option", "hidden=[8]", "--device", "cpu", "--max-K", "4", "--regimes", "apart"],
             ["d=[10,20]", "model_option=hidden=[8]", "device=cpu", "max_K=4", "regimes=[apart]"]),
    "architectures": (["--models", "mlp", "cnn1d", "--no-text", "--set", "epochs=2", "lr_grid=[1]", "--out", "o"],
                      ["models=[mlp,cnn1d]", "no_text=true", "set=[epochs=2,lr_grid=[1]]", "out=o"]),
    "invariance": (["--models", "fc:10x1", "conv:4-8", "--seeds", "0", "--ratios", "4", "16", "--set", "epochs=2",
                    "--experiment", "e"],
                   ["models=[fc:10x1,conv:4-8]", "seeds=[0]", "ratios=[4,16]", "set=[epochs=2]", "tracking.experiment=e"]),
    "burnin": (["--t", "0", "16", "--fractions", "0.5", "0.9", "--model", "fc:10x1", "--out", "o"],
               ["t=[0,16]", "fractions=[0.5,0.9]", "model=fc:10x1", "out=o"]),
    "predict": (["--models", "fc:10x1", "--eps", "0.3", "0.5", "--route", "slq", "--out", "o"],
                ["models=[fc:10x1]", "eps=[0.3,0.5]", "route=slq", "out=o"]),
    "bench": (["--kind", "population", "--json", "--device", "cpu", "--population-k", "1,2"],
              ["kind=population", "json=true", "device=cpu", "population_k=1,2"]),
    "leaderboard": (["--experiment", "e", "--out", "o", "--format", "md", "--tracking-uri", "u"],
                    ["tracking.experiment=e", "out=o", "format=md", "tracking.uri=u"]),
    "reproduce": (["abc123", "--rtol", "0.1", "--tracking-uri", "u"], ["abc123", "rtol=0.1", "tracking.uri=u"]),
    "verify": (["some/folder", "--accept", "--keep", "k"], ["some/folder", "accept=true", "keep=k"]),
    "golden": (["--update", "--golden", "g"], ["update=true", "golden=g"]),
}
NOT_ARGPARSE = {"run", "list"}  # run's grammar is Hydra's; list takes no arguments


class Parsed(BaseException):
    """Raised by the patched parse with the verb's options, so the verb stops before doing anything."""


def parsed(verb: str, argv: list[str], monkeypatch) -> argparse.Namespace:
    module, function = VERBS[verb][0].split(":")
    module = importlib.import_module(module)

    def capture(ap, argv):
        raise Parsed(parse(ap, argv))

    monkeypatch.setattr(module, "parse", capture)
    with pytest.raises(Parsed) as got:
        getattr(module, function)(argv)
    return got.value.args[0]


def test_every_verb_with_options_has_a_case():
    assert set(PAIRS) == set(VERBS) - NOT_ARGPARSE


@pytest.mark.parametrize("verb", sorted(PAIRS))
def test_the_old_flags_and_the_overrides_are_the_same_options(verb, monkeypatch):
    flags, keys = PAIRS[verb]
    old, new = parsed(verb, flags, monkeypatch), parsed(verb, keys, monkeypatch)
    assert vars(old) == vars(new)
    positionals = [a for a in flags[:1] if not a.startswith("-")]
    assert vars(old) != vars(parsed(verb, positionals, monkeypatch))  # the options did something


@pytest.mark.parametrize("verb", sorted(PAIRS))
def test_help_lists_every_key_with_its_default(verb, capsys):
    module, function = VERBS[verb][0].split(":")
    with pytest.raises(SystemExit) as e:
        getattr(importlib.import_module(module), function)(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "keys (key=value" in out
    for key in [k.split("=")[0] for k in PAIRS[verb][1] if "=" in k]:  # positionals have no "="
        assert f"\n  {key}=" in out, key


def test_shared_keys_mean_the_same_everywhere(monkeypatch):
    for verb in ("theory", "pack", "architectures", "leaderboard", "reproduce"):
        positional = ["x"] if verb == "reproduce" else []
        assert parsed(verb, positional + ["tracking.uri=sqlite:///s.db"], monkeypatch).tracking_uri == "sqlite:///s.db"
    assert parsed("pack", ["device=cpu"], monkeypatch).device == parsed("bench", ["device=cpu"], monkeypatch).device


def test_an_unknown_key_or_a_bad_switch_is_one_line_exit_2(capsys):
    module = importlib.import_module("benchmark.studies.theory.cli")
    with pytest.raises(SystemExit) as e:
        module.main(["draw=3"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1
    assert "unknown key 'draw'" in err and "draws" in err
    bench = importlib.import_module("benchmark.studies.bench.cli")
    with pytest.raises(SystemExit) as e:
        bench.main(["json=maybe"])
    assert e.value.code == 2 and "json=true or json=false" in capsys.readouterr().err


def test_translate_keeps_flags_positionals_and_key_value_option_values():
    ap = argparse.ArgumentParser(prog="python -m benchmark t")
    ap.add_argument("folder")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    ap.add_argument("--n", type=int, nargs="+")
    overrides.shared(ap, experiment="t")
    argv = ["a/b", "--set", "n=1", "x=[0,1]", "n=[2,3]", "tracking.experiment=e", "--n=4"]
    # after --set its KEY=VALUE values stay literal until the next flag; then keys are keys again
    assert translate(ap, argv) == ["a/b", "--set", "n=1", "x=[0,1]", "n=[2,3]", "tracking.experiment=e", "--n=4"]
    assert translate(ap, ["a/b", "n=[2,3]", "tracking.experiment=e"]) == ["a/b", "--n", "2", "3", "--experiment", "e"]


def test_split_list_keeps_nested_lists():
    assert split_list("[a,b]") == split_list("a,b") == ["a", "b"]
    assert split_list("[x=[0,1],y=2]") == ["x=[0,1]", "y=2"]
    assert split_list("[]") == []
