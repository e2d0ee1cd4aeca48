"""Dense projections: a stored d x D matrix of directions per member.

Used for random affine subspaces (Gaussian directions, unit norm over all D, Li et al. 2018) and for
lottery subspaces (an orthonormal basis from a training trajectory).

The directions are stored as rows, Aᵀ of shape (K, d, D): then both A θ and Aᵀ g (the backward) are
row-vector-times-matrix products that stream the matrix once at memory bandwidth. The (K, D, d)
layout makes batched GEMV fall onto a path that is 5-20x slower on CPU (measured).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


class _SharedMatmul(torch.autograd.Function):
    """θ (M, d) @ rows (d, D) -> (M, D) for M members sharing one matrix, with the big matrix as the left
    GEMM operand both ways: forward (columns @ θᵀ)ᵀ when a (D, d) layout is at hand, backward
    (rows @ gᵀ)ᵀ. On CPU, for M = 6 and d = 3,802, about 2x faster each way than θ @ rows, g @ rowsᵀ."""

    @staticmethod
    def forward(ctx, theta, rows, columns):
        ctx.save_for_backward(rows)
        return torch.mm(theta, rows) if columns is None else (columns @ theta.T).T

    @staticmethod
    def backward(ctx, g):
        (rows,) = ctx.saved_tensors
        return (rows @ g.T).T, None, None


@dataclass(frozen=True)
class DenseProjection:
    """directions: (G, d, D), row i of matrix g is column i of A_g; A θ = θ @ directions per member.

    members: None when member k uses matrix k (G = K); else (K,) long, the matrix each member uses.
    Members that share a matrix (e.g. the candidate learning rates of one lottery subspace) are one
    GEMM θ_g (K_g, d) @ A_gᵀ (d, D), so the matrix is streamed once per step for all of them.
    columns: optionally the same matrices as (G, D, d) (e.g. views of a (D, r) basis already held),
    used by the shared GEMM's forward."""

    kind = "dense"
    directions: Tensor
    members: Tensor | None = None
    columns: Tensor | None = None

    @property
    def K(self) -> int:
        return self.directions.shape[0] if self.members is None else self.members.shape[0]

    @property
    def D(self) -> int:
        return self.directions.shape[2]

    @property
    def d(self) -> int:
        return self.directions.shape[1]

    def __call__(self, theta: Tensor) -> Tensor:
        if self.members is None:
            return torch.bmm(theta.unsqueeze(1), self.directions).squeeze(1)
        out = theta.new_empty(theta.shape[0], self.D)
        for g in range(self.directions.shape[0]):
            idx = (self.members == g).nonzero().squeeze(1)
            columns = None if self.columns is None else self.columns[g]
            out = out.index_copy(0, idx, _SharedMatmul.apply(theta.index_select(0, idx), self.directions[g], columns))
        return out

    def to(self, device: torch.device | str) -> "DenseProjection":
        move = lambda t: None if t is None else t.to(device)
        return DenseProjection(self.directions.to(device), move(self.members), move(self.columns))

    def stack(self, others: list["DenseProjection"]) -> "DenseProjection":
        """One projection for all members; a matrix shared by several (the same storage) is kept once.
        With the sharing, the result keeps stacked views only where no matrix is shared (then each
        member's matrix is its own anyway)."""
        every = [self] + others
        unique: dict[tuple, int] = {}
        mats, cols, members = [], [], []
        for p in every:
            for k in range(p.K):
                g = k if p.members is None else int(p.members[k])
                mat = p.directions[g]
                key = (mat.data_ptr(), tuple(mat.shape), tuple(mat.stride()), mat.device)
                if key not in unique:
                    unique[key] = len(mats)
                    mats.append(mat)
                    cols.append(None if p.columns is None else p.columns[g])
                members.append(unique[key])
        if len(mats) == len(members):
            return DenseProjection(torch.stack(mats))
        columns = None if any(c is None for c in cols) else torch.stack(cols)
        return DenseProjection(torch.stack(mats), torch.tensor(members, device=self.directions.device), columns)

    def matrix(self) -> Tensor:
        """A as (K, D, d)."""
        per_member = self.directions if self.members is None else self.directions[self.members]
        return per_member.transpose(1, 2)


# Aᵀ is generated in blocks of this many of its D columns, each from its own seed, so that the
# stored matrix and the on-the-fly one are the same matrix for the same seed.
BLOCK = 256


def _block_seed(seed: int, block: int) -> int:
    return (seed * 0x9E3779B97F4A7C15 + block * 0xBF58476D1CE4E5B9 + 1) % (1 << 63)


def _gaussian_block(d: int, D: int, seed: int, block: int, dtype) -> Tensor:
    """Columns [block * BLOCK, ...) of Aᵀ before normalization: (d, <= BLOCK) of N(0, 1)."""
    width = min(BLOCK, D - block * BLOCK)
    g = torch.Generator().manual_seed(_block_seed(seed, block))
    return torch.randn(d, width, generator=g, dtype=dtype)


def gaussian_directions(D: int, d: int, seed: int, dtype=torch.float32) -> Tensor:
    """(d, D): d directions of N(0, 1) entries, each scaled to unit norm over all D (the columns of A).

    Not orthogonalized (Li et al. 2018): in high D they are nearly orthogonal anyway.
    """
    a = torch.cat([_gaussian_block(d, D, seed, b, dtype) for b in range(-(-D // BLOCK))], dim=1)
    return a / a.norm(dim=1, keepdim=True)


def _otf_apply(theta, seeds, norms, D, adjoint_of=None):
    """A θ (K, D) or, with adjoint_of = g (K, D), Aᵀ g (K, d), regenerating A block by block."""
    K, d = norms.shape
    out = theta.new_zeros(K, D) if adjoint_of is None else theta.new_zeros(K, d)
    for k in range(K):
        for b in range(-(-D // BLOCK)):
            blk = _gaussian_block(d, D, int(seeds[k]), b, theta.dtype).to(theta.device) / norms[k, :, None]
            cols = slice(b * BLOCK, b * BLOCK + blk.shape[1])
            if adjoint_of is None:
                out[k, cols] = theta[k] @ blk
            else:
                out[k] += blk @ adjoint_of[k, cols]
    return out


class _OnTheFlyFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, theta, seeds, norms, D):
        ctx.save_for_backward(seeds, norms)
        ctx.D = D
        return _otf_apply(theta.detach(), seeds, norms, D)

    @staticmethod
    def backward(ctx, g):
        seeds, norms = ctx.saved_tensors
        return _otf_apply(g, seeds, norms, ctx.D, adjoint_of=g), None, None, None


@dataclass(frozen=True)
class OnTheFlyDenseProjection:
    """The same Gaussian A as `gaussian_directions`, never stored: regenerated in blocks of BLOCK rows
    of A in the forward and again in the backward. Memory O(D + d * BLOCK); time dominated by the RNG.

    seeds: (K,) long; norms: (K, d), the column norms of the unnormalized A (one pass at construction).
    """

    kind = "dense_on_the_fly"
    seeds: Tensor
    norms: Tensor
    D: int

    @property
    def K(self) -> int:
        return self.seeds.shape[0]

    @property
    def d(self) -> int:
        return self.norms.shape[1]

    def __call__(self, theta: Tensor) -> Tensor:
        return _OnTheFlyFn.apply(theta, self.seeds, self.norms, self.D)

    def to(self, device) -> "OnTheFlyDenseProjection":
        return OnTheFlyDenseProjection(self.seeds, self.norms.to(device), self.D)

    def stack(self, others: list["OnTheFlyDenseProjection"]) -> "OnTheFlyDenseProjection":
        every = [self] + others
        return OnTheFlyDenseProjection(torch.cat([p.seeds for p in every]), torch.cat([p.norms for p in every]), self.D)


def gaussian_on_the_fly(D: int, d: int, seed: int, dtype=torch.float32) -> OnTheFlyDenseProjection:
    """One member (K = 1): the matrix of gaussian_directions(D, d, seed), generated when used."""
    sq = torch.zeros(d, dtype=torch.float64)
    for b in range(-(-D // BLOCK)):
        sq += _gaussian_block(d, D, seed, b, dtype).double().pow(2).sum(1)
    return OnTheFlyDenseProjection(torch.tensor([seed]), sq.sqrt().to(dtype)[None], D)
