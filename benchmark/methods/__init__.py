"""The methods (Larsen et al. ICLR'22, Table 1, plus controls): the registry (benchmark.methods.registry)
and the built-in directions kinds, one module each, which register themselves on import. Importing them
here, in the order `list` and the tables show their methods, fills the registry before anyone reads it."""
from benchmark.methods.registry import (DIRECTIONS, METHODS, Build, Directions, MemberError, Method, build_subspace,
                                        coordinates, data_mask_bits, description_bits, lr_scale, min_dim,
                                        own_preparation, prep_steps, prepared_mask, preparing, principal_dims,
                                        register, shuffled_mask)
from benchmark.methods import identity, coordinate, ticket, projection, trajectory, saliency  # noqa: E402,F401  (they register)

__all__ = ["DIRECTIONS", "METHODS", "Build", "Directions", "MemberError", "Method", "build_subspace", "coordinates",
           "data_mask_bits", "description_bits", "lr_scale", "min_dim", "own_preparation", "prep_steps",
           "prepared_mask", "preparing", "principal_dims", "register", "shuffled_mask"]
