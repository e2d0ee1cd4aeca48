"""Lottery tickets: iterative magnitude pruning with rewinding to w0 or w_t (Frankle & Carbin 2019;
Frankle et al. 2020). One IMP schedule per seed hits every requested d exactly (baselines.imp)."""
from __future__ import annotations

import torch
from torch import Tensor

from baselines import iterative_magnitude_pruning
from benchmark.methods.registry import Directions, data_mask_bits, prepared_mask, register
from benchmark.training.loop import Group, train_population
from benchmark.training.prep import Preparation, PrepContext, data_seed
from subspaces import CoordinateProjection, Subspace


def prepare(ctx: PrepContext, dims: list[int], anchors: tuple[str, ...]) -> None:
    """IMP for every seed and anchor as one population per round: masks["ticket.<anchor>"][d]."""
    seeds, S = ctx.seeds, len(ctx.seeds)
    dims = ctx.keepable(dims)
    preps = ctx.preps
    D = ctx.flat.D
    rewind = torch.stack([preps[s].anchor(a) for a in anchors for s in seeds])  # (A*S, D)
    rows = len(rewind)

    def train_mask(mask: Tensor) -> Tensor:
        if bool(mask.all()):
            # The dense round is the full-space run itself (rewinding to w0 or w_t changes nothing
            # before the first pruning): reuse it rather than train it again.
            return ctx.dense.repeat(len(anchors), 1)
        count = int(mask[0].sum())
        index = mask.nonzero()[:, 1].view(rows, count)
        offset = torch.where(mask, rewind, torch.zeros_like(rewind))
        group = Group(Subspace(offset, CoordinateProjection(index, D)), ctx.train_cfg.lr,
                      tuple(data_seed(s) for _ in anchors for s in seeds))
        return train_population(ctx.flat, [group], ctx.data, ctx.train_cfg).weights

    masks, rounds = iterative_magnitude_pruning(
        train_mask, rows, D, dims, ctx.imp_fraction, ctx.prunable, ctx.layers, device=rewind.device,
        on_round=lambda i, count: ctx.say(f"IMP round {i}: {count} of {D} kept"),
    )
    for d, m in masks.items():
        for a_i, anchor in enumerate(anchors):
            for i, s in enumerate(seeds):
                preps[s].masks.setdefault(f"ticket.{anchor}", {})[d] = m[a_i * S + i].nonzero()[:, 0]
    for s in seeds:
        preps[s].rounds["ticket"] = dict(rounds)


def steps(prep: Preparation, d: int) -> int:
    # Round 1 is the dense run (which also yields w_t); each later round retrains from the rewind point.
    return prep.rounds["ticket"][d] * prep.full_steps


register("ticket", Directions(prepared_mask, frozenset({"imp", "full_run"}), prepare, steps, scored=True,
                              label="IMP rounds", joint=True, bits=data_mask_bits),
         {"lottery_ticket": ("pruning", "w0"), "lottery_ticket_t": ("pruning", "wt")})
