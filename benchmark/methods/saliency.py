"""Pruning at initialization (SNIP, GraSP, SynFlow, magnitude): a one-shot mask chosen by a score of
each weight at the anchor (w0, or w_t for the "_t" variants), computed in the preparation.

SNIP and GraSP read one data batch: SALIENCY_EXAMPLES_PER_CLASS training examples of every class,
drawn per seed (GraSP's 10 per class; SNIP's one minibatch of 100 on MNIST is the same size).
SynFlow and magnitude are data-free. GraSP and SynFlow are defined at initialization, so they are
offered at w0 only; SNIP and magnitude at w_t are the "prune early in training" variants.
"""
from __future__ import annotations

import torch

from baselines import grasp_scores, keep_top, magnitude_scores, snip_scores, synflow_mask
from benchmark.core.seeds import derive_seed
from benchmark.methods.registry import Directions, data_mask_bits, prepared_mask, register
from benchmark.training.prep import PrepContext

SALIENCY_EXAMPLES_PER_CLASS = 10


def saliency_batch(ctx: PrepContext, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y): SALIENCY_EXAMPLES_PER_CLASS examples of each class, in a per-seed random draw."""
    y_all = ctx.data.y_train
    g = torch.Generator().manual_seed(derive_seed(seed, "saliency_batch"))
    order = torch.randperm(len(y_all), generator=g).to(y_all.device)
    picked = torch.cat([order[y_all[order] == c][:SALIENCY_EXAMPLES_PER_CLASS] for c in range(ctx.data.num_classes)])
    x = ctx.data.x_train[picked.to(ctx.data.x_train.device)].to(y_all.device)
    return x, y_all[picked]


def _scored(name: str, score):
    """A prepare hook for a one-shot score: score(ctx, w (D,), seed) -> (D,), larger is kept."""
    def prepare(ctx: PrepContext, dims: list[int], anchors: tuple[str, ...]) -> None:
        for s in ctx.seeds:
            for a in anchors:
                scores = score(ctx, ctx.preps[s].anchor(a), s)
                for d in ctx.keepable(dims):
                    ctx.preps[s].masks.setdefault(f"{name}.{a}", {})[d] = keep_top(scores, d, ctx.prunable)
        ctx.say(f"{name}: {len(dims)} mask(s) per seed and anchor")
    return prepare


def _synflow(ctx: PrepContext, dims: list[int], anchors: tuple[str, ...]) -> None:
    for s in ctx.seeds:
        for a in anchors:
            for d in ctx.keepable(dims):
                ctx.preps[s].masks.setdefault(f"synflow.{a}", {})[d] = synflow_mask(
                    ctx.flat, ctx.preps[s].anchor(a), d, ctx.data.input_shape, ctx.prunable)
    ctx.say(f"synflow: {len(dims)} mask(s) per seed, {len(dims)} x 100 rounds")


snip = _scored("snip", lambda ctx, w, s: snip_scores(ctx.flat, w, *saliency_batch(ctx, s)))
grasp = _scored("grasp", lambda ctx, w, s: -grasp_scores(ctx.flat, w, *saliency_batch(ctx, s)))  # keep the smallest S
magnitude = _scored("magnitude", lambda ctx, w, s: magnitude_scores(w))

# SNIP/GraSP/magnitude at w0 need no training; at w_t they need the full run's burn-in ("wt").
register("snip", Directions(prepared_mask, frozenset({"snip"}), snip, scored=True, label="SNIP", bits=data_mask_bits),
         {"snip": ("pruning", "w0"), "snip_t": ("pruning", "wt")})
register("grasp", Directions(prepared_mask, frozenset({"grasp"}), grasp, scored=True, label="GraSP",
                             bits=data_mask_bits),
         {"grasp": ("pruning", "w0")})
register("synflow", Directions(prepared_mask, frozenset({"synflow"}), _synflow, scored=True, label="SynFlow"),
         {"synflow": ("pruning", "w0")})
register("magnitude", Directions(prepared_mask, frozenset({"magnitude"}), magnitude, scored=True,
                                 label="magnitude"),
         {"magnitude_init": ("pruning", "w0"), "magnitude_t": ("pruning", "wt")})
