"""`full`: the whole space, A = I, b = w0 (the reference every method is compared with)."""
from benchmark.methods.registry import Directions, register
from subspaces import IdentityProjection, Subspace


def build(prep, method, d, anchor, projection) -> Subspace:
    return Subspace(anchor[None].clone(), IdentityProjection(1, anchor.numel()))


register("identity", Directions(build), {"full": ("full", "w0")})
