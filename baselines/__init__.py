"""Axis-aligned subspaces (pruning): which coordinates to keep.

The kernel is `subspaces.CoordinateProjection`; this package only chooses coordinates:
random pruning with an exact count, and lottery tickets by iterative magnitude pruning (IMP).
Nothing here knows about Hydra, MLflow or the training loop (IMP takes a `train` callback).
"""
from baselines.pruning import random_coordinates, magnitude_keep, prune_schedule
from baselines.imp import iterative_magnitude_pruning

__all__ = ["random_coordinates", "magnitude_keep", "prune_schedule", "iterative_magnitude_pruning"]
