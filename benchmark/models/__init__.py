"""Models: the registry (benchmark.models.registry) and the builders, which register themselves when
imported here (the papers' networks, then the transformer)."""
from benchmark.models.registry import MODELS, Model, create_from_config, create_model, register
from benchmark.models import networks, transformer  # noqa: E402,F401  (they register)

__all__ = ["MODELS", "Model", "create_from_config", "create_model", "register"]
