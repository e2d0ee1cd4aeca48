"""`python -m benchmark list`: every name a run override accepts, derived from the registries, and every
config key with its default and meaning (benchmark.core.schema)."""
from __future__ import annotations

import sys

from benchmark.config.compose import CONF_DIR
from benchmark.core import schema
from benchmark.data import DATASETS
from benchmark.methods import METHODS
from benchmark.models import MODELS
from subspaces import RANDOM_PROJECTIONS


def list_everything(argv: list[str] | None = None) -> int:
    if argv:
        print(f"error: list takes no arguments, got {' '.join(argv)!r}", file=sys.stderr)
        return 2
    presets = sorted(p.stem for p in (CONF_DIR / "preset").glob("*.yaml"))
    print("datasets:    " + ", ".join(DATASETS))
    print("models:      " + ", ".join(MODELS))
    print("projections: " + ", ".join(["auto", *RANDOM_PROJECTIONS]))
    print("presets:     " + ", ".join(presets))
    print("config keys (override any: key=value), with their defaults:")
    for k, v, h in schema.keys():
        print(f"  {k} = {'null' if v is None else str(v).replace(chr(39), '')}\n      {h}")
    print("methods:")
    width = max(map(len, METHODS))
    for name, m in METHODS.items():
        print(f"  {name:{width}s} family={m.family:8s} offset={m.anchor:3s} directions={m.directions}"
              + (", shuffled within each layer (the layer-matched random control)" if m.shuffled else ""))
    return 0
