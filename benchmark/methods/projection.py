"""Random affine subspaces (Li et al. 2018): A with random directions (dense, sparse or Fastfood), at
w0 (intrinsic dimension) or at w_t (burn-in affine); and SAID, one random map per layer with a learned
scale each (Aghajanyan et al. 2021)."""
from benchmark.core.seeds import derive_seed
from benchmark.methods.registry import Directions, MemberError, register
from subspaces import Subspace, random_projection
from subspaces.said import layer_slices, said


def build(prep, method, d, anchor, projection) -> Subspace:
    # Shared by random_affine and burn_in_affine at the same (seed, d): they differ by offset alone.
    seed = derive_seed(prep.seed, "random_projection", d)
    return Subspace(anchor[None].clone(), random_projection(projection, anchor.numel(), d, seed).to(anchor.device))


register("random_projection", Directions(build),
         {"random_affine": ("general", "w0"), "burn_in_affine": ("general", "wt"),
          "pretrained_affine": ("general", "wp")})


def build_said(prep, method, d, anchor, projection) -> Subspace:
    """SAID (Aghajanyan et al. 2021): one random map per layer times a learned per-layer scale, the m
    scales counted in d (subspaces.said). The `projection` setting does not apply: each layer's map is
    chosen by its own size."""
    layers = layer_slices(prep.model.names, prep.model.slices)
    if d < said_min_d(prep.model):
        raise MemberError(f"SAID needs d > {len(layers)} (one scale per layer of this model); d = {d}")
    seed = derive_seed(prep.seed, "said", d)
    return Subspace(anchor[None].clone(), said(layers, d, seed).to(anchor.device))


def said_min_d(model) -> int:
    """One scale per layer plus at least one shared number."""
    return len(layer_slices(model.names, model.slices)) + 1


def said_lr_scale(model) -> float:
    """1/√m: each of the m layers' maps has unit-norm columns, so a column of the whole map is √m long and
    a step of θ' moves w √m times as far as a global map's would; its candidates are centred accordingly
    (on the architectures transformer, m = 16, the unscaled grid's smallest lr was chosen in most cells
    and its larger ones diverged)."""
    return len(layer_slices(model.names, model.slices)) ** -0.5


register("said", Directions(build_said, min_d=said_min_d, lr_scale=said_lr_scale), {"said": ("general", "w0"), "pretrained_said": ("general", "wp")})
