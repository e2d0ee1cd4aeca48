"""Axis-aligned subspaces (pruning): which coordinates to keep.

The kernel is `subspaces.CoordinateProjection`; this package only chooses coordinates:
random pruning with an exact count (uniform, or per layer: ERK, layer-shuffled), lottery tickets by
iterative magnitude pruning (IMP), and pruning at initialization by saliency (SNIP, GraSP, SynFlow,
magnitude).
Nothing here knows about Hydra, MLflow or the training loop (IMP takes a `train` callback).
"""
from baselines.pruning import (erk_coordinates, erk_counts, keep_top, magnitude_keep, prune_schedule,
                               random_coordinates, shuffle_within_layers)
from baselines.imp import iterative_magnitude_pruning
from baselines.saliency import grasp_scores, magnitude_scores, snip_scores, synflow_mask, synflow_scores

__all__ = ["random_coordinates", "magnitude_keep", "prune_schedule", "iterative_magnitude_pruning", "keep_top",
           "shuffle_within_layers", "erk_counts", "erk_coordinates", "snip_scores", "grasp_scores",
           "synflow_scores", "synflow_mask", "magnitude_scores"]
