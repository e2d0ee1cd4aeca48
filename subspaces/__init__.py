"""General affine subspaces of weight space, w(θ) = b + A θ, and their batched projection kernels.

Every object here carries a leading population axis K: offsets are (K, D), θ is (K, d), and a
projection maps θ (K, d) to A θ (K, D). Nothing here knows about Hydra, MLflow or training.
"""
from subspaces.core import Subspace, stack
from subspaces.flat import FlatModel
from subspaces.module import SubspaceModule
from subspaces.identity import IdentityProjection
from subspaces.coordinates import CoordinateProjection
from subspaces.dense import DenseProjection, OnTheFlyDenseProjection, gaussian_directions, gaussian_on_the_fly
from subspaces.fastfood import FastfoodProjection, fastfood
from subspaces.sparse import SparseProjection, sparse_random
from subspaces.random import RANDOM_PROJECTIONS, random_projection
from subspaces.trajectory import principal_directions

__all__ = [
    "Subspace",
    "stack",
    "FlatModel",
    "SubspaceModule",
    "IdentityProjection",
    "CoordinateProjection",
    "DenseProjection",
    "gaussian_directions",
    "OnTheFlyDenseProjection",
    "gaussian_on_the_fly",
    "FastfoodProjection",
    "fastfood",
    "SparseProjection",
    "sparse_random",
    "RANDOM_PROJECTIONS",
    "random_projection",
    "principal_directions",
]
