"""Random pruning with an exact count: uniform over all D coordinates, at w0 or at w_t; and ERK
random pruning (per-layer densities of Erdős–Rényi-Kernel, Evci et al. 2020), the data-free control
that keeps every layer connected."""
from baselines import erk_coordinates, random_coordinates
from benchmark.core.seeds import derive_seed
from benchmark.methods.registry import Directions, coordinates, register
from subspaces import Subspace


def build_uniform(prep, method, d, anchor, projection) -> Subspace:
    # Seeded by (seed, d) only: random_pruning and random_pruning_t keep the same coordinates,
    # so the two differ by their offset alone.
    return coordinates(random_coordinates(anchor.numel(), d, derive_seed(prep.seed, "random_coordinates", d)), anchor)


def build_erk(prep, method, d, anchor, projection) -> Subspace:
    flat = prep.model
    index = erk_coordinates(list(flat.shapes), list(flat.slices), d, derive_seed(prep.seed, "erk_coordinates", d))
    return coordinates(index, anchor)


register("random_coordinates", Directions(build_uniform),
         {"random_pruning": ("pruning", "w0"), "random_pruning_t": ("pruning", "wt")})
register("erk", Directions(build_erk), {"erk_random": ("pruning", "w0")})
