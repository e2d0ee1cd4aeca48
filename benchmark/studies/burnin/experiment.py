"""`python -m benchmark burnin`: how fast the threshold dimension falls as the starting point trains.

Larsen et al. (2022, Fig. 4): random affine subspaces placed at w_t, after t full-space steps of burn-in,
need fewer dimensions the larger t, and fewer the looser the target. Here every t is one point of a
study (benchmark.studies.axis): a whole `run` with burn_in_steps=t (the same reference, protocol, seeds
and lr selection at every t), for the "_t" methods (burn-in affine, the lottery subspace and ticket at
step t, random pruning at w_t). Per method and t, the curve d*(ε) over the target fraction ε of the
reference's test accuracy (ε = 0.9 is d*90), beside the anchor's own accuracy, w_t alone (θ = 0): where
the anchor reaches a target by itself, that threshold is the anchor's, not the subspace's, and the
tables and plots say so. At t = 0 the anchor is w0 and each "_t" method is its w0 method (burn-in affine
is random affine, the same draw: the same numbers as the invariance study's fc-100x2).

The default: scikit-learn's 8x8 digits (real digits, offline), the default MLP (fc:100x2, D = 17,610),
t in {0, 4, 16, 64, 256} of the 330-step budget (30 epochs of 11 steps), 3 seeds. Conv-2 on MNIST with a
longer t grid is `preset=larsen2022`, meant for a GPU.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from benchmark.core.errors import UserError
from benchmark.studies.axis import Point, Row, methods_of

DEFAULT_T = [0, 4, 16, 64, 256]
DEFAULT_METHODS = ["full", "burn_in_affine", "lottery_subspace_t", "random_pruning_t", "lottery_ticket_t"]
FRACTIONS = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
FRACTION = 0.9  # the headline: d*90
STUDY_OVERRIDES = ["imp.fraction=0.5"]  # IMP halves per round, as the default preset
PRESETS = {  # Conv-2 on MNIST as preset=mnist_conv2 (5 epochs, Adam on θ), t up to 1,024 of its ~2,100 steps
    "larsen2022": {"dataset": "mnist", "model": "conv:16-32", "epochs": 5, "t": [0, 8, 32, 128, 256, 512, 1024],
                   "ratios": [5, 20, 80, 320, 1280, 2560],
                   "set": ["subspace_lr=5e-2", "subspace_optimizer=adam"]},
}


def points(ts: list[int]) -> list[Point]:
    bad = [t for t in ts if t < 0]
    if bad:
        raise UserError(f"burn-in time {bad[0]} is negative; accepted: steps t >= 0, e.g. --t 0 16 64")
    if len(set(ts)) < len(ts):
        raise UserError(f"a burn-in time is listed twice in {ts}")
    return [Point(f"t={t}", t, (f"burn_in_steps={t}",)) for t in sorted(ts)]


@dataclass(frozen=True)
class Fall:
    """One method's d*90 along t."""

    method: str
    first: Row  # at the smallest t
    last_subspace: Row | None  # at the largest t where d*90 is the subspace's own (a crossing, not θ = 0's)
    anchor_from: float | None  # the smallest t from which the anchor alone reaches 90% at the threshold
    halving: float | None  # steps per halving of d*90 between first and last_subspace (log-linear in t)

    @property
    def factor(self) -> float | None:
        if self.last_subspace is None or not self.first.d or not self.last_subspace.d:
            return None
        return self.first.d / self.last_subspace.d


def falls(rows: list[Row]) -> list[Fall]:
    out = []
    for m in methods_of(rows):
        mine = sorted((r for r in rows if r.method == m and r.fraction == FRACTION), key=lambda r: r.value)
        own = [r for r in mine if r.d is not None and not r.at_theta0]
        anchored = [r.value for r in mine if r.at_theta0]
        last = own[-1] if own and own[-1] is not mine[0] else None
        halving = None
        if last is not None and mine[0].d and last.d < mine[0].d:
            halving = (last.value - mine[0].value) / math.log2(mine[0].d / last.d)
        out.append(Fall(m, mine[0], last, min(anchored) if anchored else None, halving))
    return out


def anchor_table(rows: list[Row]) -> list[tuple[float, float, float, float]]:
    """(t, w_t alone, the reference, the 90% target) per t, from any "wt"-anchored row."""
    seen = {}
    for r in rows:
        if r.anchor == "wt" and r.fraction == FRACTION and r.value not in seen:
            seen[r.value] = (r.value, r.anchor_acc, r.reference, r.target)
    return [seen[t] for t in sorted(seen)]
