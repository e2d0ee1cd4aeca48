"""One grammar for every verb: `key=value` overrides, as `run` takes them.

A verb's schema is its argparse parser: each option is a key, named after its long flag (`--spike-scale`
is `spike_scale`), with the flag's default and help, so the keys are never typed twice. The keys verbs
share are defined once, here (`shared`), with the meaning `run` gives them (benchmark.core.schema):
`tracking.uri`, `tracking.experiment`, `device`. The flags stay, as aliases (scripts use them); the
positionals stay (`verify FOLDER`, `reproduce RUN_ID`).

    python -m benchmark theory D=[1000,2000] draws=8 tracking.uri=sqlite:///t.db
    python -m benchmark theory --D 1000 2000 --draws 8 --tracking-uri sqlite:///t.db   # the same
"""
from __future__ import annotations

import argparse
import re

from benchmark.core import schema
from benchmark.core.errors import UserError

# Shared keys: the flag each verb has always taken for it, and its meaning everywhere.
SHARED_FLAGS = {"tracking.uri": "--tracking-uri", "tracking.experiment": "--experiment", "device": "--device"}
_RUN_HELP = {k: h for k, _, h in schema.keys()}
SHARED_HELP = {"tracking.uri": f"the MLflow store ({_RUN_HELP['tracking.uri']})",
               "tracking.experiment": "the MLflow experiment its runs go to",
               "device": _RUN_HELP["device"]}
_KEY = re.compile(r"^([A-Za-z_][\w.]*)=(.*)$", re.S)
_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off", "null", "none", "")


def shared(ap: argparse.ArgumentParser, tracking: bool = True, experiment: str | None = None,
           device: str | None = None) -> None:
    """Add the shared keys a verb takes: tracking.uri when it logs (tracking); tracking.experiment with this
    default when given; device with this default when given."""
    if tracking:
        ap.add_argument(SHARED_FLAGS["tracking.uri"], default=None, help=SHARED_HELP["tracking.uri"])
    if experiment is not None:
        ap.add_argument(SHARED_FLAGS["tracking.experiment"], default=experiment,
                        help=f"{SHARED_HELP['tracking.experiment']} (default: %(default)s)")
    if device is not None:
        ap.add_argument(SHARED_FLAGS["device"], default=device, choices=("auto", "cpu", "cuda"),
                        help=SHARED_HELP["device"])


def keys(ap: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """{key: its option} for every option of the parser but --help, in the parser's order."""
    by_flag = {flag: key for key, flag in SHARED_FLAGS.items()}
    out = {}
    for action in ap._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        flag = max(action.option_strings, key=len)
        out[by_flag.get(flag, flag.lstrip("-").replace("-", "_"))] = action
    return out


def split_list(value: str) -> list[str]:
    """'[a,b]' or 'a,b' -> ['a', 'b'], commas inside nested brackets kept ('[x=[0,1],y=2]' -> 2 items)."""
    value = value.strip()
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    items, depth, cur = [], 0, ""
    for ch in value:
        depth += (ch == "[") - (ch == "]")
        if ch == "," and depth == 0:
            items.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return items + ([cur.strip()] if cur.strip() else [])


def _flag_tokens(verb: str, key: str, value: str, action: argparse.Action) -> list[str]:
    flag = max(action.option_strings, key=len)
    if action.nargs == 0:  # a switch: key=true sets it, key=false leaves it off
        if value.lower() in _TRUE:
            return [flag]
        if value.lower() in _FALSE:
            return []
        raise UserError(f"{verb}: {key}={value!r} is a switch; accepted: {key}=true or {key}=false")
    if action.nargs in ("+", "*") or isinstance(action.nargs, int):
        return [flag, *split_list(value)]
    return [flag, value]


def translate(ap: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """argv with every key=value token replaced by its flag and value(s); flags, their values and
    positionals pass unchanged. The values of an option that itself takes KEY=VALUE pairs (e.g. pack's
    --model-option, architectures' --set) are never read as keys. An unknown key is a UserError naming it."""
    verb = ap.prog.replace("python -m benchmark ", "")
    known = keys(ap)
    flags = {flag: a for a in known.values() for flag in a.option_strings}
    out, literal = [], False  # literal: inside the values of a KEY=VALUE option
    for token in argv:
        if token.startswith("-"):
            action = flags.get(token.split("=", 1)[0])
            literal = action is not None and action.metavar == "KEY=VALUE" and "=" not in token
            out.append(token)
            continue
        m = None if literal else _KEY.match(token)
        if m is None:
            out.append(token)
            continue
        key, value = m.groups()
        if key not in known:
            raise UserError(f"{verb}: unknown key {key!r}; accepted: {', '.join(known)} "
                            f"(`python -m benchmark {verb} --help` lists them with their defaults)")
        out += _flag_tokens(verb, key, value, known[key])
    return out


def help_keys(ap: argparse.ArgumentParser) -> str:
    """The epilog `--help` shows: every key with its default and meaning."""
    lines = ["keys (key=value, as `run` takes them; each flag above is the same key):"]
    for key, action in keys(ap).items():
        default = action.default
        shown = "null" if default is None else (f"[{','.join(map(str, default))}]" if isinstance(default, (list, tuple))
                                                 else str(default).lower() if isinstance(default, bool) else default)
        text = re.sub(r"\s*\(default: %\(default\)s\)", "", action.help or "").replace("%%", "%")
        lines.append(f"  {key}={shown}" + (f"\n      {text}" if text else ""))
    return "\n".join(lines)


def parse(ap: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """ap.parse_args(argv) in the one grammar: key=value overrides (or the flags), `--help` listing the keys.
    An unknown key or a bad switch value exits 2 with one line, as argparse does for a bad flag."""
    ap.formatter_class = argparse.RawDescriptionHelpFormatter
    ap.epilog = help_keys(ap)
    try:
        return ap.parse_args(translate(ap, argv))
    except UserError as e:
        ap.exit(2, f"error: {e}\n")
