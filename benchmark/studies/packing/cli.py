"""`python -m benchmark pack`: K tasks packed into nearly orthogonal random subspaces of one network,
w = b + Σ_i A_i θ_i (benchmark.studies.packing.experiment), in three regimes; K_90 per regime, the predicted against the
measured interference, an MLflow parent with one child per (regime, d, anchor, K), tables and plots.
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import asdict
from pathlib import Path

import yaml
from tqdm import tqdm

from benchmark.core.errors import UserError
from benchmark.core.overrides import parse, shared
from benchmark.runner import interrupts, provenance, tracking
from benchmark.studies.packing.experiment import (
    ANCHORS,
    REGIMES,
    PackSettings,
    make_context,
    planned_member_epochs,
    study,
)
from benchmark.studies.packing.report import plot_interference, plot_retention, summary_text, write


def _option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UserError(f"--model-option {text!r}: expected KEY=VALUE, e.g. hidden=[128]")
    return key, yaml.safe_load(value)


def _parse(argv: list[str]) -> tuple[PackSettings, argparse.Namespace]:
    d = PackSettings()
    ap = argparse.ArgumentParser(prog="python -m benchmark pack", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default=d.dataset, help="task 0; task i permutes its inputs (default: %(default)s)")
    ap.add_argument("--model", default=d.model, help="a model of `python -m benchmark list` (default: %(default)s)")
    ap.add_argument("--model-option", action="append", default=None, metavar="KEY=VALUE",
                    help="model option, YAML value, repeatable (default for mlp: hidden=[128])")
    ap.add_argument("--d", type=int, nargs="+", default=list(d.dims), help="subspace dimension of every task")
    ap.add_argument("--regimes", nargs="+", default=list(d.regimes), help=f"of {', '.join(REGIMES)} (default: all)")
    ap.add_argument("--anchors", nargs="+", default=list(d.anchors), help=f"of {', '.join(ANCHORS)} (default: both)")
    ap.add_argument("--max-K", type=int, default=d.max_tasks, help="most tasks (default: up to K·d ≈ D)")
    ap.add_argument("--epochs", type=int, default=d.epochs)
    ap.add_argument("--batch-size", type=int, default=d.batch_size)
    ap.add_argument("--lr", type=float, nargs="+", default=list(d.lr_grid), help="candidate lrs of θ (SGD)")
    ap.add_argument("--reference-lr", type=float, nargs="+", default=list(d.reference_lr_grid),
                    help="candidate lrs of the full network (Adam)")
    ap.add_argument("--burn-in-steps", type=int, default=d.burn_in_steps, help="warm-up steps of anchor wt")
    ap.add_argument("--projection", default=d.projection, help="auto | dense | sparse | fastfood")
    ap.add_argument("--probes", type=int, default=d.probes, help="Hutchinson probes per task")
    ap.add_argument("--predicted-tasks", type=int, default=d.predicted_tasks, help="tasks whose interference is predicted")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--out", default="packing", help="folder for packing.md, *.csv, packing.png, interference.png")
    shared(ap, experiment="packing", device=d.device)
    args = parse(ap, argv)
    options = d.model_options if args.model_option is None and args.model == d.model else \
        tuple(_option(o) for o in args.model_option or ())
    settings = PackSettings(args.dataset, args.model, options, tuple(args.d), tuple(args.regimes),
                            tuple(args.anchors), args.max_K, args.epochs, args.batch_size, tuple(args.lr),
                            tuple(args.reference_lr), args.burn_in_steps, args.projection, args.probes,
                            args.predicted_tasks, args.seed, args.device)
    return settings, args


def main(argv: list[str]) -> int:
    try:
        return _main(argv)
    except UserError as e:  # bad settings, an unwritable --out, a store that fails: one line
        print(f"error: {e}", file=sys.stderr)
        return 2


def _main(argv: list[str]) -> int:
    meter = provenance.StageMeter()
    settings, args = _parse(argv)
    interrupts.install()  # Ctrl-C and SIGTERM land between store writes
    settings.validate()
    out = Path(args.out)

    def progress(stage: str, members: int) -> None:
        bar.set_description(stage, refresh=False)
        bar.update(members)

    ctx = make_context(settings, progress)  # loads the data and checks K·d <= D: before any run is opened
    bar = tqdm(total=planned_member_epochs(settings, ctx.D), desc="pack", unit="member-epoch", file=sys.stderr,
               dynamic_ncols=True)
    try:
        out.mkdir(parents=True, exist_ok=True)
        uri = tracking.resolve_uri(args.tracking_uri)
        client, exp_id = tracking.open_store(uri, args.experiment)
    except OSError as e:
        raise UserError(f"cannot write to --out {str(out)!r}: {e.strerror}") from None

    parent, status = None, "FAILED"
    try:
        with interrupts.deferred():
            parent = tracking.start_run(client, exp_id, "pack", tags={"dofbench.kind": "pack"})
        params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(settings).items()}
        params["model_options"] = {k: v for k, v in settings.model_options}
        tracking.log_values(client, parent, params={**params, "D": ctx.D})
        say = lambda msg: tqdm.write(msg, file=sys.stderr)
        result = study(ctx, say)
        bar.close()
        for c in result.cells:
            child = tracking.start_run(client, exp_id, f"{c.regime}-d{c.d}-{c.anchor}-K{c.K}", parent_id=parent)
            row = c.row(result.dint.d, result.D)
            tracking.log_values(client, child, params={k: row[k] for k in ("regime", "d", "anchor", "K", "lr")},
                                metrics={k: float(row[k]) for k in ("test_acc_mean", "solo_acc_mean", "retention_mean",
                                                                    "retention_min", "every_task_kept", "K_d_over_D")},
                                curves={"test_acc_by_task": c.test_acc, "retention_by_task": c.retention})
            tracking.end_run(client, child)
        files = write(result, out)
        files += [plot_retention(result, out / "packing.png"), plot_interference(result, out / "interference.png")]
        summary = {f"K_90.{k['regime']}.d{k['d']}.{k['anchor']}": k["K_90"] for k in result.capacities()}
        summary.update({"d_int90": result.dint.d or math.nan, "reference_test_acc": result.reference.test_acc,
                        **{f"time.{k.replace(' ', '_').replace('*', '')}": v for k, v in result.times.items()}})
        tracking.log_values(client, parent, metrics=summary)
        for path in files:
            client.log_artifact(parent, str(path), "packing")
        provenance.write_study(out, "pack", argv, params, meter, str(ctx.device))
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        print("interrupted: the parent run is marked KILLED", file=sys.stderr)
        return 130
    finally:
        bar.close()
        if parent is not None:
            tracking.end_run(client, parent, status)
    print(summary_text(result))
    print(f"tables and plots in {out}/; runs in MLflow experiment {args.experiment!r}: {tracking.ui_command(uri)}")
    return 0


# --- tables --------------------------------------------------------------------------------------------
