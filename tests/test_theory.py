"""Theory check: exact least-squares success, the cone projection, Gaussian sizes, `benchmark theory`."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, special
from scipy.optimize import NonlinearConstraint, minimize

from subspaces.theory.cones import project, sizes, sublevel_cone
from subspaces.theory.quadratic import (
    SPECTRA,
    crossing,
    landscape,
    min_loss_curves,
    nested_min_loss,
    nested_min_loss_complement,
    spectrum,
    success_probability,
)

SPIKES = {"spiked": dict(spikes=2)}


def _gaussian(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_spectra_shapes_and_bad_names():
    assert torch.equal(spectrum("flat", 5), torch.ones(5, dtype=torch.float64))
    assert torch.allclose(spectrum("power", 4, alpha=2.0), torch.tensor([1, 1 / 4, 1 / 9, 1 / 16], dtype=torch.float64))
    lam = spectrum("spiked", 6, spikes=2, spike_scale=50.0)
    assert lam.tolist() == [50.0, 50.0, 1.0, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="unknown spectrum 'bumpy'; accepted: flat, power, spiked"):
        spectrum("bumpy", 5)
    q = landscape(50, "flat", distance=3.0, seed=2)
    assert math.isclose(float((q.w0 - q.w_star).norm()), 3.0)
    assert math.isclose(q.initial_loss, 0.5 * 9.0)


@pytest.mark.parametrize("name", SPECTRA)
def test_least_squares_best_loss_matches_brute_force_minimization(name):
    """The exact best loss for every nested d equals a generic minimizer's over θ."""
    D = 7
    q = landscape(D, name, seed=3, **SPIKES.get(name, {}))
    A = _gaussian(1, D, D - 1, seed=4)
    exact = nested_min_loss(q, A)[0]
    assert math.isclose(float(exact[0]), q.initial_loss, rel_tol=1e-12)
    for d in range(1, D):
        Ad = A[0, :, :d].numpy()
        loss = lambda th: float(q.loss(q.w0 + torch.from_numpy(Ad @ th)))
        brute = minimize(loss, np.zeros(d), method="BFGS", options={"gtol": 1e-12}).fun
        assert float(exact[d]) == pytest.approx(brute, rel=1e-6, abs=1e-12)
    # More directions never hurt: nested subspaces.
    assert torch.all(exact[1:] <= exact[:-1] + 1e-12)


@pytest.mark.parametrize("name", SPECTRA)
def test_complement_route_gives_the_same_best_loss(name):
    """For one subspace V = span(A_d), parametrizing by normals spanning V^⊥ gives the same minimum."""
    D = 9
    q = landscape(D, name, seed=5, **SPIKES.get(name, {}))
    A = _gaussian(D, D, seed=6)
    Q = torch.linalg.qr(A).Q  # first d columns span V, the rest V^⊥
    forward = nested_min_loss(q, A[None])[0]
    for d in range(D + 1):
        normals = Q[:, d:].flip(-1)  # D − d normals; nested order does not matter for the full set
        via_complement = nested_min_loss_complement(q, normals[None])[0, D - d]
        assert float(via_complement) == pytest.approx(float(forward[d]), rel=1e-9, abs=1e-12)


def test_min_loss_curves_shape_ends_monotone_halves_and_seeded():
    q = landscape(40, "power", seed=1)
    curves = min_loss_curves(q, draws=7, seed=11, max_bytes=40_000)  # several chunks
    assert curves.shape == (7, 41)
    assert torch.allclose(curves[:, 0], torch.full((7,), q.initial_loss, dtype=torch.float64))
    assert torch.all(curves[:, -1].abs() < 1e-12)  # d = D reaches w*
    low, high = curves[:, :21], curves[:, 21:]
    assert torch.all(low[:, 1:] <= low[:, :-1] + 1e-12) and torch.all(high[:, 1:] <= high[:, :-1] + 1e-12)
    assert torch.equal(curves, min_loss_curves(q, draws=7, seed=11))
    assert not torch.equal(curves, min_loss_curves(q, draws=7, seed=12))


def test_success_probability_and_crossing():
    curves = torch.tensor([[4.0, 3.0, 2.0, 1.0, 0.0], [4.0, 3.5, 3.0, 0.5, 0.0]], dtype=torch.float64)
    p = success_probability(curves, torch.tensor([2.0, 0.1], dtype=torch.float64))
    assert p.tolist() == [[0.0, 0.0, 0.5, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0, 1.0]]
    assert crossing(p[0], 0.5) == 2.0
    assert crossing(p[0], 0.75) == 2.5  # interpolated between d = 2 (0.5) and d = 3 (1.0)
    assert crossing(torch.zeros(5, dtype=torch.float64), 0.5) == math.inf


@pytest.mark.parametrize("name", SPECTRA)
@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_cone_is_the_set_of_directions_into_the_sublevel_set(name, fraction):
    q = landscape(8, name, seed=2, **SPIKES.get(name, {}))
    eps = fraction * q.initial_loss
    cone = sublevel_cone(q, eps)
    z = torch.cat([_gaussian(2000, 8, seed=7), (q.w_star - q.w0) + 0.5 * _gaussian(2000, 8, seed=8)])
    # z is in C iff the ray w0 + t z dips to L <= ε; along a ray L is a parabola in t.
    lam, r = q.eigenvalues, q.w0 - q.w_star
    a, b = 0.5 * (lam * z**2).sum(-1), (lam * z * r).sum(-1)
    best = q.initial_loss - torch.where(b < 0, b**2 / (4 * a), torch.zeros_like(a))  # L0 + bt + at², t >= 0
    inside = cone.margin(z) >= 0
    assert torch.equal(inside, best <= eps)
    assert 0 < int(inside.sum()) < 4000


@pytest.mark.filterwarnings("ignore:delta_grad == 0.0:UserWarning")  # scipy's quasi-Newton on a linear term
@pytest.mark.parametrize("name", SPECTRA)
@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_cone_projection_matches_a_generic_convex_solver(name, fraction):
    D = 6
    q = landscape(D, name, seed=1, **SPIKES.get(name, {}))
    cone = sublevel_cone(q, fraction * q.initial_loss)
    h, lam, k = cone.h.numpy(), cone.eigenvalues.numpy(), cone.kappa
    interior = (q.w_star - q.w0).numpy()  # w* is inside S(ε), so w* − w0 is inside C
    g = _gaussian(8, D, seed=3)
    ours = project(cone, g).numpy()
    soc = NonlinearConstraint(lambda x: h @ x - np.sqrt(k * (lam * x * x).sum() + 1e-30), 0, np.inf)
    for gi, zi in zip(g.numpy(), ours):
        ref = minimize(lambda x: 0.5 * ((x - gi) ** 2).sum(), interior, jac=lambda x: x - gi, constraints=[soc],
                       method="trust-constr", options={"xtol": 1e-12, "gtol": 1e-12, "maxiter": 5000}).x
        assert np.abs(ref - zi).max() < 1e-4 * max(1.0, np.abs(gi).max())


@pytest.mark.parametrize("name", SPECTRA)
def test_cone_projection_satisfies_moreau_at_scale(name):
    """z = Π_C(g) iff z ∈ C, g − z ∈ C°, ⟨z, g − z⟩ = 0; checked where no generic solver is fast."""
    q = landscape(1500, name, seed=4)
    for fraction in (0.02, 0.5, 0.98):
        cone = sublevel_cone(q, fraction * q.initial_loss)
        g = _gaussian(64, 1500, seed=9)
        z = project(cone, g)
        scale = math.sqrt(1500)
        assert float(cone.margin(z).min()) > -1e-9 * scale
        assert float(cone.polar().margin(g - z).min()) > -1e-9 * scale
        assert float(((g - z) * z).sum(-1).abs().max()) < 1e-8 * 1500


def _circular_cone_sizes(D: int, half_angle: float) -> tuple[float, float]:
    """δ and E‖Π(g)‖ of a circular cone by quadrature over the angle φ between g and the axis:
    ‖Π(g)‖ = ‖g‖ k(φ), k = 1 for φ <= α, cos(φ − α) up to α + π/2, else 0; φ has density ∝ sin^(D−2)."""
    norm = integrate.quad(lambda p: math.sin(p) ** (D - 2), 0, math.pi)[0]

    def k(p):
        return 1.0 if p <= half_angle else (math.cos(p - half_angle) if p < half_angle + math.pi / 2 else 0.0)

    ek = integrate.quad(lambda p: k(p) * math.sin(p) ** (D - 2), 0, math.pi, points=[half_angle])[0] / norm
    ek2 = integrate.quad(lambda p: k(p) ** 2 * math.sin(p) ** (D - 2), 0, math.pi, points=[half_angle])[0] / norm
    mean_norm = math.sqrt(2) * math.exp(special.gammaln((D + 1) / 2) - special.gammaln(D / 2))
    return D * ek2, mean_norm * ek


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.8])
def test_sizes_of_a_spherical_cap_match_closed_form(fraction):
    """With a flat spectrum the cone's trace on the sphere is a cap of half-angle asin(√(ε/L0))."""
    D = 40
    q = landscape(D, "flat", seed=0)
    cone = sublevel_cone(q, fraction * q.initial_loss)
    s = sizes(lambda g: project(cone, g), D, samples=4000, seed=123)
    delta, width = _circular_cone_sizes(D, math.asin(math.sqrt(fraction)))
    assert abs(s.statistical_dimension - delta) < 4 * s.statistical_dimension_se
    assert abs(s.width - width) < 4 * s.width_se
    if fraction == 0.5:
        assert delta == pytest.approx(D / 2, rel=1e-6)  # a 45° cone is congruent to its polar


def test_sizes_of_the_orthant_match_closed_form():
    D = 30
    s = sizes(lambda g: g.clamp_min(0), D, samples=4000, seed=5)
    # ‖g₊‖² is chi-square with Binomial(D, ½) degrees of freedom.
    width = sum(math.comb(D, j) / 2**D * math.sqrt(2) * math.exp(special.gammaln((j + 1) / 2) - special.gammaln(j / 2))
                for j in range(1, D + 1))
    assert abs(s.statistical_dimension - D / 2) < 4 * s.statistical_dimension_se
    assert abs(s.width - width) < 4 * s.width_se
    assert s.width**2 <= s.statistical_dimension <= s.width**2 + 1


@pytest.mark.parametrize("name", SPECTRA)
def test_statistical_dimension_predicts_the_measured_crossing(name):
    from benchmark.studies.theory.experiment import TheorySettings, study

    settings = TheorySettings(dims=(300,), spectra=(name,), eps=(0.1, 0.5, 0.8), draws=60, samples=300, spikes=5)
    result = study(name, 300, settings)
    for t in result.thresholds:
        assert abs(t.error) < 0.05, t
        assert 0 < t.transition < 0.3 * 300


def test_theory_cli_writes_plots_tables_and_mlflow_runs(tmp_path):
    from mlflow.tracking import MlflowClient

    from benchmark.__main__ import main

    uri = f"sqlite:///{tmp_path}/m.db"
    out = tmp_path / "th"
    rc = main(["theory", "--D", "40", "80", "--spectrum", "flat", "power", "--eps", "0.2", "0.6", "--draws", "20",
               "--samples", "40", "--out", str(out), "--tracking-uri", uri])
    assert rc == 0
    assert {p.name for p in out.iterdir()} == {"theory.png", "widths.png", "theory.md", "theory.csv", "provenance.json"}
    assert len((out / "theory.csv").read_text().strip().splitlines()) == 1 + 2 * 2 * 2
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("theory")
    runs = client.search_runs([exp.experiment_id])
    parent = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parent) == 1 and len(children) == 4
    assert parent[0].info.status == "FINISHED"
    metrics = parent[0].data.metrics
    assert {"worst_error_statdim", "worst_error_gordon", "width_exponent.flat", "width_exponent.power"} <= set(metrics)
    assert "worst_error_statdim/D_1000_up" not in metrics  # no D >= 1000 here
    assert metrics["worst_error_statdim"] < 0.1
    assert {f"theory/{n}" for n in ("theory.png", "widths.png", "theory.md", "theory.csv")} <= {
        a.path for a in client.list_artifacts(parent[0].info.run_id, "theory")}
    child = children[0].data.metrics
    assert {"measured_d50/eps_0.2", "predicted_statdim/eps_0.6", "transition/eps_0.2"} <= set(child)


@pytest.mark.parametrize("args, message", [
    (["--spectrum", "bumpy"], "unknown spectrum bumpy; accepted: flat, power, spiked"),
    (["--eps", "1.5"], "--eps [1.5]: fractions of L(w0) strictly between 0 and 1"),
    (["--D", "5"], "--D [5]: dimensions must be whole numbers >= 20"),
    (["--draws", "3"], "--draws 3: need at least 10"),
    (["--out", "{tmp}/a_file/o"], "cannot write to --out '{tmp}/a_file/o': Not a directory"),
])
def test_theory_cli_bad_input_is_one_line(tmp_path, capsys, args, message):
    from benchmark.__main__ import main

    (tmp_path / "a_file").write_text("not a folder")
    args = [a.format(tmp=tmp_path) for a in args]
    assert main(["theory", "--out", str(tmp_path / "o"), *args, "--tracking-uri", f"sqlite:///{tmp_path}/m.db"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {message.format(tmp=tmp_path)}"


def test_theory_cli_with_a_store_that_refuses_writes_is_one_line(tmp_path, capsys):
    from benchmark.__main__ import main
    from benchmark.runner import tracking

    tracking.open_store(f"sqlite:///{tmp_path}/m.db", "theory")  # exists, so opening it only reads
    rc = main(["theory", "--D", "40", "--spectrum", "flat", "--eps", "0.5", "--draws", "10", "--samples", "20",
               "--out", str(tmp_path / "o"), "--tracking-uri", f"sqlite:///file:{tmp_path}/m.db?mode=ro&uri=true"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: the tracking store") and "readonly database" in err
    assert "\n" not in err
