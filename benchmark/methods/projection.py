"""Random affine subspaces (Li et al. 2018): A with random directions (dense, sparse or Fastfood), at
w0 (intrinsic dimension) or at w_t (burn-in affine)."""
from benchmark.methods import Directions, register
from benchmark.seeds import derive_seed
from subspaces import Subspace, random_projection


def build(prep, method, d, anchor, projection) -> Subspace:
    # Shared by random_affine and burn_in_affine at the same (seed, d): they differ by offset alone.
    seed = derive_seed(prep.seed, "random_projection", d)
    return Subspace(anchor[None].clone(), random_projection(projection, anchor.numel(), d, seed).to(anchor.device))


register("random_projection", Directions(build),
         {"random_affine": ("general", "w0"), "burn_in_affine": ("general", "wt")})
