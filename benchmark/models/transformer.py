"""A small pre-norm transformer encoder (Vaswani et al. 2017; pre-norm as in Xiong et al. 2020; patches
as in ViT, Dosovitskiy et al. 2021) for every input dofbench has:

  (C, L) sequences (MNIST-1D: L = 40 steps of C = 1; one-hot text: L characters of C = vocabulary)
        -> L / patch tokens of C·patch features;
  (C, H, W) images -> (H / patch)·(W / patch) tokens of C·patch² features.

tokens -> linear embedding + learned positions -> depth × [x + Attn(LN(x)), x + MLP(LN(x))] -> LN ->
pool (mean over tokens, or the last token: what a next-character predictor reads) -> linear classifier.

Attention is written out (matmul, softmax) rather than nn.MultiheadAttention: the same maths, and it
runs under torch.func.vmap, so a population of transformers trains in one batched step.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from benchmark.core.errors import UserError
from benchmark.models.registry import register

POOLS = ("mean", "last")


class Attention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        B, T, W = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, W // self.heads).permute(2, 0, 3, 1, 4)  # (B, h, T, W/h) each
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(W // self.heads), dim=-1)
        return self.out((att @ v).transpose(1, 2).reshape(B, T, W))


class Block(nn.Module):
    def __init__(self, width: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(width), Attention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, mlp_ratio * width), nn.GELU(), nn.Linear(mlp_ratio * width, width))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Transformer(nn.Module):
    def __init__(self, input_shape, num_classes, width: int = 32, depth: int = 2, heads: int = 4, patch: int = 1,
                 mlp_ratio: int = 2, pool: str = "mean"):
        super().__init__()
        if width % heads:
            raise UserError(f"transformer width {width} is not divisible by heads {heads}")
        if pool not in POOLS:
            raise UserError(f"unknown transformer pool {pool!r}; accepted: {', '.join(POOLS)}")
        spatial = tuple(input_shape[1:])
        if any(s % patch for s in spatial):
            raise UserError(f"transformer patch {patch} does not divide the input's length/size {spatial}")
        self.input_shape, self.patch, self.pool = tuple(input_shape), patch, pool
        tokens = math.prod(s // patch for s in spatial)
        self.embed = nn.Linear(input_shape[0] * patch ** len(spatial), width)
        self.position = nn.Parameter(0.02 * torch.randn(tokens, width))
        self.blocks = nn.Sequential(*[Block(width, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_classes)

    def tokens(self, x: Tensor) -> Tensor:
        """x (B, C, L) or (B, C, H, W) -> (B, tokens, C·patch^rank), patches in row-major order."""
        p = self.patch
        if x.dim() == 3:
            B, C, L = x.shape
            return x.view(B, C, L // p, p).permute(0, 2, 1, 3).reshape(B, L // p, C * p)
        B, C, H, W = x.shape
        x = x.view(B, C, H // p, p, W // p, p).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(B, (H // p) * (W // p), C * p * p)

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm(self.blocks(self.embed(self.tokens(x)) + self.position))
        return self.head(h.mean(1) if self.pool == "mean" else h[:, -1])


@register("transformer", ranks={2, 3})
def transformer(input_shape, num_classes, width: int = 32, depth: int = 2, heads: int = 4, patch: int = 1,
                mlp_ratio: int = 2, pool: str = "mean") -> nn.Module:
    """Pre-norm transformer encoder on sequences (C, L) or images (C, H, W); see the module docstring.

    D = e + T·w + depth·(4w² + 4w + 2·r·w² + (r + 1)·w + 4w) + 2w + (w + 1)·classes, with e = (C·p^k + 1)·w
    the embedding, T tokens, w width, r mlp_ratio."""
    return Transformer(input_shape, num_classes, width, depth, heads, patch, mlp_ratio, pool)
