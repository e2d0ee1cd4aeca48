"""The methods, as in Larsen et al. (ICLR'22, Table 1), plus controls: how each chooses A and b.

A method is a row of that table: a family, where the offset comes from (w0 or w_t), and how the
directions are chosen. A directions kind is one module of this package plus one `register` call (this module: the registry,
which imports none of the kinds; the package's __init__ imports them, in the order `list` and tables
show their methods):
what shared preparation it reads, optionally how it computes its own part of that preparation, how
one member's subspace is built at d, and what that preparation cost in full-space steps.

Building one member's subspace is a pure function of the shared preparation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from baselines import shuffle_within_layers
from benchmark.core.seeds import derive_seed
from benchmark.training.description import FLOAT_BITS, layer_count_bits, mask_bits, member_bits
from benchmark.training.prep import ANCHORS, OwnPreparation, Preparation, PrepContext
from subspaces import CoordinateProjection, Subspace


class MemberError(Exception):
    """This member cannot be built (the reason is recorded on its FAILED run); the others go on."""


@dataclass(frozen=True)
class Method:
    family: str  # "full", "pruning" (axis-aligned) or "general"
    anchor: str  # offset from "w0" (initialization), "wt" (after burn_in_steps full-space steps) or "wp"
    # (pretrained: w0 trained in full space on another task, benchmark.training.prep.pretrain)
    directions: str  # key of DIRECTIONS
    shuffled: bool = False  # pruning only: the mask shuffled within each layer (keeps per-layer counts)

    @property
    def needs(self) -> set[str]:
        """Which shared preparation this method uses: "wt", "wp", "full_run", "indep_run", "imp", or the
        name of a directions kind that prepares its own masks (see Directions.prepare)."""
        return ({self.anchor} - {"w0"}) | set(DIRECTIONS[self.directions].needs)

    @property
    def mask_key(self) -> str:
        """Where its mask sits in Preparation.masks, when the preparation chose it."""
        return f"{self.directions}.{self.anchor}"


# build(prep, method, d, anchor (D,), projection name) -> one member's Subspace (K = 1)
Build = Callable[[Preparation, Method, int, Tensor, str], Subspace]


@dataclass(frozen=True)
class Directions:
    """One way of choosing A. `needs`: the shared preparation it reads. `prepare(ctx, dims, anchors)`,
    if given, computes its own part (masks[f"{name}.{anchor}"][d]) once per seed; `steps(prep, d)` the
    full-space training steps that preparation cost a member at d (burn-in is added by the anchor);
    `scored`: a pruning mask chosen by a score, so "<method>_shuffled" is its layer-matched control."""

    build: Build
    needs: frozenset[str] = frozenset()
    prepare: Callable[[PrepContext, list[int], tuple[str, ...]], None] | None = None
    steps: Callable[[Preparation, int], int] | None = None
    scored: bool = False
    trajectory: str | None = None  # "reference" or "independent": reads that trajectory's basis
    label: str = ""  # its preparation stage, as time reports name it
    joint: bool = False  # its mask at one d depends on every d prepared with it (IMP's one schedule)
    # bits(prep, d, fixed): what it derived from training data, in the data-free code (benchmark.training.description);
    # None: nothing (a seeded draw, or a function of the anchor). fixed: coordinates a mask never prunes.
    bits: Callable[[Preparation, int, int], float] | None = None
    # min_d(model): the smallest d a member can have on this FlatModel (None: 1), e.g. SAID's one scale per
    # layer plus one shared number; the extension wave never proposes less.
    min_d: Callable[[object], int] | None = None
    # lr_scale(model): its candidate lrs are the family's times this (None: 1), for maps whose columns are
    # not unit norm over the whole network (SAID's are √m long)
    lr_scale: Callable[[object], float] | None = None


DIRECTIONS: dict[str, Directions] = {}
METHODS: dict[str, Method] = {}


def register(name: str, directions: Directions, methods: dict[str, tuple[str, str]]) -> None:
    """Register a directions kind and its methods ({method name: (family, anchor)}). A scored pruning
    kind also gets "<method>_shuffled" for each of its methods: the layer-shuffled control."""
    if name in DIRECTIONS:
        raise ValueError(f"directions {name!r} is registered twice")
    DIRECTIONS[name] = directions
    for method, (family, anchor) in methods.items():
        METHODS[method] = Method(family, anchor, name)
    if directions.scored:
        for method, (family, anchor) in methods.items():
            METHODS[f"{method}_shuffled"] = Method(family, anchor, name, shuffled=True)


def coordinates(index: Tensor, anchor: Tensor) -> Subspace:
    """Axis-aligned: b = anchor on kept coordinates (index: (d,)) and 0 elsewhere (pruned weights are exactly 0)."""
    D = anchor.numel()
    offset = torch.zeros(1, D, dtype=anchor.dtype, device=anchor.device)
    index = index.to(anchor.device)
    offset[0, index] = anchor[index]
    return Subspace(offset, CoordinateProjection(index[None], D))


def prepared_mask(prep: Preparation, method: Method, d: int, anchor: Tensor, projection: str) -> Subspace:
    """A pruning member whose mask the preparation chose (a ticket, a saliency score)."""
    return coordinates(_mask(prep, method, d), anchor)


def _mask(prep: Preparation, method: Method, d: int) -> Tensor:
    masks = prep.masks.get(method.mask_key, {})
    if d not in masks:
        raise MemberError(f"the preparation holds no {method.mask_key} mask with d = {d} (with imp.prunable=weights "
                          f"a mask keeps every bias, so d must be at least their number)")
    return masks[d]


def shuffled_mask(prep: Preparation, method: Method, d: int, anchor: Tensor, projection: str) -> Subspace:
    """The layer-shuffled control of a scored mask (Frankle et al. ICLR'21): the same number of kept
    coordinates in every parameter tensor, at random places within it."""
    seed = derive_seed(prep.seed, "layer_shuffle", method.directions, method.anchor, d)
    return coordinates(shuffle_within_layers(_mask(prep, method, d), list(prep.model.slices), seed), anchor)


def build_subspace(method: str, prep: Preparation, d: int, projection: str = "auto") -> Subspace:
    """One member's subspace (K = 1) for `method` at dimension d from its seed's preparation."""
    m = METHODS[method]
    anchor = prep.anchor(m.anchor)
    build = shuffled_mask if m.shuffled else DIRECTIONS[m.directions].build
    return build(prep, m, d, anchor, projection)


def data_mask_bits(prep: Preparation, d: int, fixed: int) -> float:
    """A mask chosen with the training data (IMP, SNIP, GraSP), sent as an enumerative code."""
    return mask_bits(prep.w0.numel(), d, fixed)


def description_bits(method: str, prep: Preparation, d: int, fixed: int = 0,
                     theta_bits: float = FLOAT_BITS) -> dict[str, float]:
    """{"data_free", "data_conditional"}: the member's description length in bits (benchmark.training.description).
    A layer-shuffled control of a data-chosen mask sends its per-tensor counts instead of the mask."""
    m = METHODS[method]
    own = DIRECTIONS[m.directions].bits
    if own is None:
        data = 0.0
    elif m.shuffled:
        prunable = [s.stop - s.start for s, shape in zip(prep.model.slices, prep.model.shapes)
                    if not fixed or len(shape) > 1]  # with fixed biases only the weight tensors' counts vary
        data = layer_count_bits(prunable)
    else:
        data = own(prep, d, fixed)
    return member_bits(d, prep.w0.numel(), data, m.anchor != "w0", theta_bits)


def min_dim(method: str, model) -> int:
    """The smallest d a member of `method` can have on `model` (a FlatModel)."""
    own = DIRECTIONS[METHODS[method].directions].min_d
    return 1 if own is None else own(model)


def lr_scale(method: str, model) -> float:
    """The factor on `method`'s candidate lrs on `model` (a FlatModel; None: 1)."""
    own = DIRECTIONS[METHODS[method].directions].lr_scale
    return 1.0 if own is None or model is None else own(model)


def prep_steps(method: str, prep: Preparation, d: int) -> int:
    """Full-space training steps the method spent before its own training began."""
    m = METHODS[method]
    own = DIRECTIONS[m.directions].steps
    anchor = {"w0": 0, "wt": prep.burn_in_steps, "wp": prep.full_steps}[m.anchor]  # w_p: a whole pretraining run
    return max(anchor, own(prep, d) if own else 0)


def principal_dims(method: str, prep: Preparation, d: int) -> int | None:
    """How many of a lottery subspace's d directions are principal directions of its trajectory (the
    rest are random completion); None for methods without a trajectory basis."""
    which = DIRECTIONS[METHODS[method].directions].trajectory
    return None if which is None else min(d, prep.trajectory(which)[1])


def preparing(methods) -> dict[str, tuple[str, ...]]:
    """{directions kind: the anchors its masks are needed at} for the kinds among `methods` that
    compute their own preparation (IMP, saliency scores)."""
    out: dict[str, set[str]] = {}
    for name in methods:
        m = METHODS[name]
        if DIRECTIONS[m.directions].prepare is not None:
            out.setdefault(m.directions, set()).add(m.anchor)
    return {k: tuple(a for a in ANCHORS if a in v) for k, v in out.items()}


def own_preparation(masks: dict[str, dict]) -> dict[str, OwnPreparation]:
    """The prepare hooks of a plan's masks, {kind: {"dims": [...], "anchors": [...]}} (grid.preparation_plan)."""
    return {kind: (DIRECTIONS[kind].prepare, list(part["dims"]), tuple(part["anchors"])) for kind, part in masks.items()}

