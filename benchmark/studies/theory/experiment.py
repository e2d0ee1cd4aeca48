"""`python -m benchmark theory`: predicted versus measured threshold dimension on quadratic landscapes.

For each spectrum and D: P_s(d, ε), the exact probability that a Haar-random d-dimensional affine
subspace through w0 reaches L <= ε (least squares over `draws` subspaces, every d at once), and the
two predictions of where it crosses 1/2, D − δ(C) and D − w(C)², each by Monte Carlo over
`samples` Gaussian vectors projected onto the cone C = cone(S(ε) − w0). ε is given as a fraction
of L(w0) (the cone depends on nothing else for a given direction of w0 − w*).
"""
from __future__ import annotations

import functools
import math
import statistics
from dataclasses import asdict, dataclass, field

import torch

from benchmark.core.errors import UserError
from benchmark.core.seeds import derive_seed
from subspaces.theory.cones import project, sizes, sublevel_cone
from subspaces.theory.quadratic import SPECTRA, crossing, landscape, min_loss_curves, success_probability

# ε/L(w0) of the heatmaps: the measured P_s is free at any ε once the best losses are known.
HEATMAP_FRACTIONS = tuple(round(0.01 * i, 2) for i in range(1, 100))
TOLERANCE = 0.05  # the predictions should land within this fraction of D of the measured crossing
CHECKED_FROM_D = 1000


@dataclass(frozen=True)
class TheorySettings:
    dims: tuple[int, ...] = (250, 500, 1000, 2000)
    spectra: tuple[str, ...] = SPECTRA
    eps: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)  # fractions of L(w0)
    draws: int = 100  # random subspaces per landscape (each gives every d)
    samples: int = 500  # Gaussian vectors per cone size
    alpha: float = 1.0  # power spectrum: λ_i = i^-alpha
    spikes: int = 10  # spiked spectrum: this many eigenvalues of spike_scale over a bulk of 1
    spike_scale: float = 100.0
    distance: float = 1.0  # ‖w0 − w*‖
    seed: int = 0

    def validate(self) -> None:
        bad = [s for s in self.spectra if s not in SPECTRA]
        if bad or not self.spectra:
            raise UserError(f"unknown spectrum {', '.join(bad) or '(none)'}; accepted: {', '.join(SPECTRA)}")
        if not self.dims or min(self.dims) < 20:
            raise UserError(f"--D {list(self.dims)}: dimensions must be whole numbers >= 20")
        if any(self.spikes >= D for D in self.dims) and "spiked" in self.spectra:
            raise UserError(f"--spikes {self.spikes}: must be below every D ({min(self.dims)})")
        if not self.eps or not all(0 < e < 1 for e in self.eps):
            raise UserError(f"--eps {list(self.eps)}: fractions of L(w0) strictly between 0 and 1")
        for name in ("draws", "samples"):
            if getattr(self, name) < 10:
                raise UserError(f"--{name} {getattr(self, name)}: need at least 10")
        if self.alpha <= 0 or self.spike_scale <= 0 or self.spikes < 1 or self.distance <= 0:
            raise UserError(f"--alpha {self.alpha}, --spike-scale {self.spike_scale}, --spikes {self.spikes}, "
                            f"--distance {self.distance}: each must be > 0")


@dataclass(frozen=True)
class Threshold:
    """One (spectrum, D, ε): the measured crossing of P_s and the two predictions, in dimensions d."""

    spectrum: str
    D: int
    eps_fraction: float
    eps: float
    measured: float  # d where P_s reaches 1/2
    measured_10: float  # ... 0.1
    measured_90: float  # ... 0.9
    statistical_dimension: float
    statistical_dimension_se: float
    width: float
    width_se: float
    polar_fraction: float

    @property
    def predicted(self) -> float:
        return self.D - self.statistical_dimension

    @property
    def predicted_gordon(self) -> float:
        return self.D - self.width**2

    @property
    def transition(self) -> float:
        """d at P_s = 0.9 minus d at P_s = 0.1."""
        return self.measured_90 - self.measured_10

    @property
    def error(self) -> float:
        """(D − δ − measured) / D."""
        return (self.predicted - self.measured) / self.D

    @property
    def error_gordon(self) -> float:
        return (self.predicted_gordon - self.measured) / self.D

    def row(self) -> dict:
        out = asdict(self)
        out.update(predicted_statdim=self.predicted, predicted_gordon=self.predicted_gordon,
                   transition=self.transition, error_statdim=self.error, error_gordon=self.error_gordon)
        return out


@dataclass
class Landscape:
    """One spectrum at one D: P_s on the heatmap grid and the thresholds at the settings' ε."""

    spectrum: str
    D: int
    fractions: tuple[float, ...]  # the heatmap's ε / L(w0)
    heatmap: torch.Tensor  # (len(fractions), D + 1): P_s(ε, d)
    thresholds: list[Threshold] = field(default_factory=list)


def study(spectrum: str, D: int, s: TheorySettings) -> Landscape:
    options = {"power": {"alpha": s.alpha}, "spiked": {"spikes": s.spikes, "spike_scale": s.spike_scale}}
    q = landscape(D, spectrum, s.distance, derive_seed(s.seed, "theory", "w0", spectrum, D),
                  **options.get(spectrum, {}))
    L0 = q.initial_loss
    curves = min_loss_curves(q, s.draws, derive_seed(s.seed, "theory", "subspaces", spectrum, D))
    heat = success_probability(curves, torch.tensor(HEATMAP_FRACTIONS, dtype=torch.float64) * L0)
    out = Landscape(spectrum, D, HEATMAP_FRACTIONS, heat)
    probs = success_probability(curves, torch.tensor(s.eps, dtype=torch.float64) * L0)
    for f, p in zip(s.eps, probs):
        cone = sublevel_cone(q, f * L0)
        size = sizes(functools.partial(project, cone), D, s.samples, derive_seed(s.seed, "theory", "cone", spectrum, D, f))
        out.thresholds.append(Threshold(
            spectrum, D, f, f * L0, crossing(p, 0.5), crossing(p, 0.1), crossing(p, 0.9),
            size.statistical_dimension, size.statistical_dimension_se, size.width, size.width_se,
            size.polar_fraction))
    return out


def width_exponents(results: list[Landscape]) -> dict[str, float]:
    """Per spectrum: the median over ε of the least-squares slope of log(transition width) vs log D."""
    out = {}
    for spectrum in dict.fromkeys(r.spectrum for r in results):
        mine = [r for r in results if r.spectrum == spectrum]
        if len({r.D for r in mine}) < 2:
            continue
        slopes = []
        for i in range(len(mine[0].thresholds)):
            pts = [(math.log(r.D), math.log(r.thresholds[i].transition)) for r in mine
                   if math.isfinite(r.thresholds[i].transition) and r.thresholds[i].transition > 0]
            if len(pts) >= 2:
                mx, my = statistics.fmean(p[0] for p in pts), statistics.fmean(p[1] for p in pts)
                slopes.append(sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts))
        if slopes:
            out[spectrum] = statistics.median(slopes)
    return out


def worst_errors(results: list[Landscape], from_D: int = 0) -> dict[str, float]:
    """The largest |prediction − measured| / D over every ε and every D >= from_D, per prediction."""
    rows = [t for r in results if r.D >= from_D for t in r.thresholds]
    if not rows:
        return {}
    return {"statdim": max(abs(t.error) for t in rows), "gordon": max(abs(t.error_gordon) for t in rows)}
