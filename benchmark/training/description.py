"""Description length of a trained member, in bits (Li et al. read d_int as a minimum description length).

A member is w = b + A θ; θ is its d numbers (for a pruned network, the kept weights' change from their
values in the anchor). The receiver knows the code (architecture, dofbench, the settings) and:

  data-free         not the training data. It is sent θ (d numbers), the seeds (w0's and the method's
                    own draw of a mask or projection), and everything the method derived from data:
                    a data-chosen mask (IMP, SNIP, GraSP) as log2 C(n, k) bits (enumerative, exact), a
                    shuffled control's per-tensor counts, a trained anchor w_t (D floats), a trajectory
                    basis (D·r floats). A mask that is a function of the anchor (SynFlow, magnitude) costs
                    nothing beyond the anchor.
  data-conditional  the training data too: a seeded, deterministic recipe (the full run, IMP) replaces
                    what it produces, so every method costs θ, its seeds and a recipe: what that implies
                    in compute is the member's `prep_steps`, reported beside it.

Quantized, θ costs d·b bits plus one FLOAT_BITS scale (`quantize`: uniform, symmetric, one scale per
member: general subspaces have no layers in θ, so one rule serves every method).

Seeds and settings are SEED_BITS each: two seeds (initialization and the method's own draw) in both
codes, plus the data order's seed and the recipe's settings in the data-conditional one.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

SEED_BITS = 64
FLOAT_BITS = 32  # one unquantized number


def log2_binomial(n: int, k: int) -> float:
    """log2 C(n, k), exact up to float rounding for any size (via log-gamma)."""
    if not 0 <= k <= n:
        raise ValueError(f"C(n, k) needs 0 <= k <= n, got n = {n}, k = {k}")
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)) / math.log(2)


def mask_bits(D: int, d: int, fixed: int = 0) -> float:
    """Bits of an enumerative code for a mask of d kept coordinates out of D, `fixed` of which are never
    pruned (imp.prunable=weights keeps the biases): which d − fixed of the D − fixed others it keeps."""
    return log2_binomial(D - fixed, d - fixed)


def layer_count_bits(sizes: list[int]) -> float:
    """Bits of each prunable tensor's kept count, 0..n_l: sum over tensors of log2(n_l + 1)."""
    return sum(math.log2(n + 1) for n in sizes)


def quantize(theta: Tensor, bits: int) -> Tensor:
    """θ (K, d) rounded to b bits per number, one scale per member: s_k = max|θ_k| / (2^(b−1) − 1),
    θ ↦ s_k · round(θ / s_k), so each member's θ takes at most 2^b − 1 values (symmetric around 0)."""
    levels = 2 ** (bits - 1) - 1
    scale = theta.abs().amax(dim=1, keepdim=True) / levels
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))  # a member with θ = 0 stays at 0
    return torch.round(theta / safe).clamp_(-levels, levels) * safe


def member_bits(d: int, D: int, data_bits: float, trained_anchor: bool,
                theta_bits: float = FLOAT_BITS) -> dict[str, float]:
    """{"data_free": ..., "data_conditional": ...} bits of one member with d numbers of theta_bits each
    (below FLOAT_BITS: quantized, plus its one scale).

    data_bits: what its directions derived from data (a mask, counts, a basis; 0 if none);
    trained_anchor: its offset is w_t, D trained numbers."""
    theta = d * theta_bits + (FLOAT_BITS if theta_bits < FLOAT_BITS else 0)
    derived = data_bits + (D * FLOAT_BITS if trained_anchor else 0.0)
    return {"data_free": theta + 2 * SEED_BITS + derived,
            "data_conditional": theta + 4 * SEED_BITS}
