"""The verbs behind `python -m benchmark`. Hydra composes the run config; we validate and run it."""
from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from benchmark.errors import UserError

CONF_DIR = Path(__file__).parent / "conf"


def _task(cfg: DictConfig) -> None:
    from benchmark.config import build_config
    from benchmark.run import run

    raw = OmegaConf.to_container(cfg, resolve=True)
    try:
        run(build_config(raw))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: finished members are logged; the parent run is marked KILLED", file=sys.stderr)
        sys.exit(130)


def run_with_hydra(overrides: list[str]) -> int:
    """Hand the overrides to Hydra as if they were this program's command line."""
    main = hydra.main(version_base="1.3", config_path="conf", config_name="config")(_task)
    sys.argv = [sys.argv[0]] + overrides
    main()
    return 0


def list_everything() -> int:
    from benchmark.data import DATASETS
    from benchmark.methods import METHODS
    from benchmark.models import MODELS

    presets = sorted(p.stem for p in (CONF_DIR / "preset").glob("*.yaml"))
    print("datasets: " + ", ".join(DATASETS))
    print("models:   " + ", ".join(MODELS))
    print("presets:  " + ", ".join(presets))
    print("methods:")
    for name, m in METHODS.items():
        print(f"  {name:20s} family={m.family:8s} offset={m.anchor:3s} directions={m.directions}")
    return 0
