"""`python -m benchmark predict [RUN OVERRIDES...] [OPTIONS]`: parse the options (every `key=value` that is not
one of predict's keys is a `run` override: dataset=..., model=..., model.width=...), predict each model
(experiment), write the report and provenance, log it to MLflow."""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import asdict
from pathlib import Path

from hydra.errors import HydraException
from tqdm import tqdm

from benchmark.core.errors import UserError
from benchmark.core.overrides import keys, parse, shared
from benchmark.runner import interrupts, provenance, tracking
from benchmark.studies import axis
from benchmark.studies.predict import experiment
from benchmark.studies.predict.experiment import ROUTES, PredictSettings, agreement, attach_real, predict
from benchmark.studies.predict.report import plot, to_csv, to_markdown

_KEY = re.compile(r"^([A-Za-z_][\w.]*)=")


def _parser() -> argparse.ArgumentParser:
    d = PredictSettings()
    ap = argparse.ArgumentParser(prog="python -m benchmark predict", description=experiment.__doc__)
    ap.add_argument("--models", nargs="+", default=[], help="family:spec (as `invariance`: fc:WIDTHxDEPTH, "
                    "conv:C1-C2), one prediction each; default: the model the overrides choose")
    ap.add_argument("--eps", type=float, nargs="+", default=list(d.eps), help="ε as fractions of L(w0) (of L(w_t))")
    ap.add_argument("--burn-in", type=int, nargs="+", default=list(d.burn_in), metavar="T",
                    help="predict at w_t, after t steps of run's full-space run from w0 (burn-in affine subspaces); "
                    "0 is w0, the default")
    ap.add_argument("--route", default=d.route, choices=ROUTES, help="exact (J stored), slq (matrix-free) or auto")
    ap.add_argument("--drift", action="store_true", help="also train each real network from w0 (run's full-space "
                    "recipe) and report ‖w_T − w0‖ / ‖w0‖ and the change of its NTK (seconds to minutes per model)")
    ap.add_argument("--exact-max-D", type=int, default=d.exact_max_D, help="auto: the exact route up to this D")
    ap.add_argument("--measure-max-D", type=int, default=d.measure_max_D,
                    help="measure the linearized network's threshold exactly up to this D (exact route)")
    ap.add_argument("--draws", type=int, default=d.draws, help="random subspaces per measurement")
    ap.add_argument("--probes", type=int, default=d.probes, help="slq: Gaussian probes of the spectral density")
    ap.add_argument("--steps", type=int, default=d.steps, help="slq: Lanczos steps per probe")
    ap.add_argument("--samples", type=int, default=d.samples, help="Gaussian samples per cone size")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--compare", nargs="*", default=[], help="committed results whose random-affine d*90 the "
                    "predictions are compared with: a study CSV (invariance.csv) or a run's leaderboard.csv; a relative "
                    "path is read from the working directory, else from the repository")
    ap.add_argument("--out", default="predict", help="folder for predict.csv, predict.md, predict.png")
    shared(ap, experiment="predict")
    return ap


def _split(ap: argparse.ArgumentParser, argv: list[str]) -> tuple[list[str], list[str]]:
    """(predict's own tokens, `run` overrides): a key=value token whose key is not predict's goes to `run`."""
    own = keys(ap)
    mine, run = [], []
    for token in argv:
        m = _KEY.match(token)
        (run if m and m.group(1) not in own else mine).append(token)
    return mine, run


def _compare_files(paths: list[str]) -> list[str]:
    """--compare's files, each found before any work: relative to the working directory, else to the
    repository (a committed result, which `verify` re-reads from its scratch folder)."""
    out = []
    for path in paths:
        found = next((str(p) for p in (Path(path), provenance.ROOT / path) if p.is_file()), None)
        if found is None:
            raise UserError(f"--compare {path!r}: no such file (a study CSV such as "
                            f"leaderboards/results/invariance/invariance.csv, or a run's leaderboard.csv)")
        out.append(found)
    return out


def _config_error(e: HydraException) -> UserError:
    """Hydra's multi-line composition error as one line (the options it lists kept)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip() and not ln.startswith("Config search path")]
    if "Available options" in str(e):
        head = lines[0]
        options = [ln for ln in lines[2:] if re.fullmatch(r"[\w.-]+", ln)]
        return UserError(f"{head}; accepted: {', '.join(options)}")
    return UserError("; ".join(lines[:2]))


def main(argv: list[str]) -> int:
    try:
        return _main(argv)
    except UserError as e:  # bad settings or overrides, an unwritable --out, a store that fails: one line
        print(f"error: {e}", file=sys.stderr)
        return 2


def _main(argv: list[str]) -> int:
    meter = provenance.StageMeter()
    ap = _parser()
    mine, run_overrides = _split(ap, argv)
    args = parse(ap, mine)
    settings = PredictSettings(tuple(args.eps), tuple(args.burn_in), args.route, args.drift, args.exact_max_D, args.measure_max_D, args.draws,
                               args.probes, args.steps, args.samples, args.seed)
    interrupts.install()
    out = Path(args.out)
    try:
        settings.validate()
        todo = [axis.model_spec(m) for m in args.models] or [(None, ())]
        compare = _compare_files(args.compare)
        out.mkdir(parents=True, exist_ok=True)
        uri = tracking.resolve_uri(args.tracking_uri)
        client, exp_id = tracking.open_store(uri, args.experiment)
    except OSError as e:
        raise UserError(f"cannot write to --out {str(out)!r}: {e.strerror}") from None

    results, parent = [], None
    params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(settings).items()}
    params |= {"run_overrides": run_overrides, "models": args.models}
    try:
        with interrupts.deferred():
            parent = tracking.start_run(client, exp_id, "predict", tags={"dofbench.kind": "predict"})
        tracking.log_values(client, parent, params=params)
        for label, model_overrides in todo:
            try:  # without --models the row is named after the model the overrides choose
                predictions = predict(label, [*run_overrides, *model_overrides], settings, progress)
            except HydraException as e:
                raise _config_error(e) from None
            for p in predictions:
                results.append(p)
                log_prediction(client, exp_id, parent, p)
    except KeyboardInterrupt:
        if parent is not None:
            tracking.end_run(client, parent, "KILLED")
        print("interrupted: the finished predictions are in MLflow", file=sys.stderr)
        return 130
    except UserError:
        if parent is not None:
            tracking.end_run(client, parent, "FAILED")
        raise

    attach_real(results, compare)
    anchors = "w0 (seed 0)" + (", and at w_t (t steps of the full-space run)" if set(settings.burn_in) - {0} else "")
    settings_line = (f"Regenerate: `{provenance.command_line(['predict', *argv])}`; curvature at {anchors}, "
                     f"squared loss on one-hot targets; ε90 from gradient flow of the linearized network.")
    table = to_markdown(results, settings_line)
    (out / "predict.csv").write_text(to_csv(results))
    title = "w0" if settings.burn_in == (0,) else "w0 and after burn-in"
    (out / "predict.md").write_text(f"# Predicted threshold dimension from the curvature at {title}\n\n{table}")
    files = [out / "predict.csv", out / "predict.md", plot(results, out / "predict.png")]
    summary = {f"agreement.{k}": v for k, v in agreement(results).items()}
    summary |= {f"agreement_burn_in.{k}": v for k, v in agreement(results, burn_in=True).items()}
    tracking.log_values(client, parent, metrics=summary)
    for path in files:
        client.log_artifact(parent, str(path), "predict")
    tracking.end_run(client, parent)
    provenance.write_study(out, "predict", argv, params, meter, "cpu")
    print(table)
    print(f"table and plot in {out}/; runs in MLflow experiment {args.experiment!r}: {tracking.ui_command(uri)}")
    return 0


def progress(label: str, anchor: str, most: int) -> tqdm:
    """The bar of one anchor's Jacobian products (the slq route's cost: about one pass over the examples each)."""
    return tqdm(total=most, desc=f"{label} at {anchor}: Jacobian products", unit="product", file=sys.stderr,
                dynamic_ncols=True, leave=False)


def log_prediction(client, exp_id: str, parent: str, p: experiment.Prediction) -> None:
    """Print one prediction's line and log it as a child run of the parent (named model, or model @ t)."""
    at = f" at t = {p.t}" if p.t else ""
    print(f"{p.model}{at}: D = {p.D:,}, {p.route}, rank {p.rank:,}, L(anchor) {p.initial_loss:.4f}, floor "
          f"{p.floor:.4f}; ε90 = {p.d90.fraction:.3f} L(anchor) (val acc {p.accuracy90:.3f} of best "
          f"{p.best_accuracy:.3f}); predicted d*90 = {p.d90.predicted:,.0f} ({p.seconds:.1f} s)", flush=True)
    child = tracking.start_run(client, exp_id, p.model + (f" t={p.t}" if p.t else ""), parent_id=parent)
    metrics = {"D": p.D, "t": p.t, "rank": p.rank, "initial_loss": p.initial_loss, "floor": p.floor,
               "lambda_max": p.lambda_max, "trace": p.trace, "eps90_fraction": p.d90.fraction, "seconds": p.seconds}
    if p.drift:
        metrics |= {"drift.distance": p.drift.distance, "drift.ntk_change": p.drift.ntk_change,
                    "drift.test_accuracy": p.drift.test_accuracy}
    for t in p.thresholds:
        key = "d90" if t.kind == "target90" else f"eps_{t.fraction:g}"
        metrics[f"predicted/{key}"] = t.predicted
        if t.linearized == t.linearized:
            metrics[f"linearized/{key}"] = t.linearized
    tracking.log_values(client, child, params={"model": p.model, "route": p.route, "D": p.D, "t": p.t},
                        metrics=metrics)
    tracking.end_run(client, child)
