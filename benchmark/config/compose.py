"""Hydra's composition of the run config, without Hydra's app (no working-dir change, no logging): what the
studies and checks call to get the exact config `python -m benchmark run OVERRIDES` would run."""
from __future__ import annotations

from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_module
from omegaconf import OmegaConf

from benchmark.core import schema

CONF_DIR = Path(__file__).parents[1] / "conf"  # benchmark/conf: the YAML groups and presets


def compose(overrides: list[str]) -> dict:
    """The config `run` gets for these overrides, as a plain dict (Hydra's compose API, no working dir change)."""
    schema.register()
    with initialize_config_module("benchmark.conf", version_base="1.3"):
        return OmegaConf.to_container(hydra_compose("config", overrides=overrides), resolve=True)
