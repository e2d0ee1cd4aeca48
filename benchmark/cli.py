"""The verbs behind `python -m benchmark`. Hydra composes the run config; we validate and run it."""
from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from benchmark import interrupts, provenance, schema
from benchmark.errors import UserError

CONF_DIR = Path(__file__).parent / "conf"


def _task(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from benchmark.config import build_config
    from benchmark.run import run
    from benchmark.sweep import read_sweep, record_failed_job

    raw = OmegaConf.to_container(cfg, resolve=True)
    interrupts.install()  # SIGTERM takes the Ctrl-C path, between store writes: finished members stay logged
    hc = HydraConfig.get()
    sweep, job = None, None
    if hc.mode == RunMode.MULTIRUN:
        sweep = read_sweep(hc.sweep.dir)
        job = f"job{hc.job.num}: {' '.join(hc.overrides.task)}"[:250]
    try:
        run(build_config(raw), sweep=sweep, job_name=job,
            command=provenance.command_line(["run", *(hc.overrides.task if sweep else sys.argv[1:])]))
    except UserError as e:
        print(f"error: {e}" if sweep is None else f"error: {job}: {e}", file=sys.stderr)
        if sweep is None:
            sys.exit(2)
        record_failed_job(sweep, job, str(e))  # the other jobs go on; the sweep's end names this one
    except KeyboardInterrupt:
        print("interrupted: finished members are logged; the parent run is marked KILLED", file=sys.stderr)
        sys.exit(130)


# Overrides that would make Hydra instantiate a class the user names: never accepted.
FORBIDDEN_OVERRIDES = ("_target_", "hydra.callbacks", "hydra/callbacks")


def run_with_hydra(overrides: list[str]) -> int:
    """Hand the overrides to Hydra as if they were this program's command line."""
    bad = [o for o in overrides if any(f in o for f in FORBIDDEN_OVERRIDES)]
    if bad:
        print(f"error: override {bad[0]!r} is not accepted: dofbench never instantiates classes named on the "
              f"command line (_target_, hydra.callbacks); choose a launcher with hydra/launcher=joblib|"
              f"submitit_local|submitit_slurm and set its documented options", file=sys.stderr)
        return 2
    schema.register()
    main = hydra.main(version_base="1.3", config_path="conf", config_name="config")(_task)
    sys.argv = [sys.argv[0]] + overrides
    try:
        main()
    except KeyboardInterrupt:  # before or between jobs, outside _task's own handling
        print("interrupted", file=sys.stderr)
        return 130
    return 0


def compose(overrides: list[str]) -> dict:
    """The config `run` gets for these overrides, as a plain dict (Hydra's compose API, no working dir change)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    schema.register()
    with initialize_config_module("benchmark.conf", version_base="1.3"):
        return OmegaConf.to_container(hydra_compose("config", overrides=overrides), resolve=True)


def list_everything(argv: list[str] | None = None) -> int:
    if argv:
        print(f"error: list takes no arguments, got {' '.join(argv)!r}", file=sys.stderr)
        return 2
    from benchmark.data import DATASETS
    from benchmark.methods import METHODS
    from benchmark.models import MODELS
    from subspaces import RANDOM_PROJECTIONS

    presets = sorted(p.stem for p in (CONF_DIR / "preset").glob("*.yaml"))
    print("datasets:    " + ", ".join(DATASETS))
    print("models:      " + ", ".join(MODELS))
    print("projections: " + ", ".join(["auto", *RANDOM_PROJECTIONS]))
    print("presets:     " + ", ".join(presets))
    print("config keys (override any: key=value), with their defaults:")
    for k, v, h in schema.keys():
        print(f"  {k} = {'null' if v is None else str(v).replace(chr(39), '')}\n      {h}")
    print("methods:")
    width = max(map(len, METHODS))
    for name, m in METHODS.items():
        print(f"  {name:{width}s} family={m.family:8s} offset={m.anchor:3s} directions={m.directions}"
              + (", shuffled within each layer (the layer-matched random control)" if m.shuffled else ""))
    return 0


def leaderboard_main(argv: list[str]) -> int:
    """`python -m benchmark leaderboard [--experiment NAME | --run PARENT_RUN_ID] [--out DIR] [--format ...]`."""
    import argparse

    from benchmark import tracking

    ap = argparse.ArgumentParser(prog="python -m benchmark leaderboard",
                                 description="Leaderboards (tables and plots) from the child runs in MLflow.")
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--experiment", help="every member in this experiment (default: all dofbench experiments)")
    which.add_argument("--run", help="the members of this parent run")
    ap.add_argument("--out", default="leaderboards/results", help="folder; one subfolder per <dataset>-<model>")
    ap.add_argument("--format", default="md,csv,html", help="comma-separated: md, csv, html")
    ap.add_argument("--tracking-uri", default=None, help="default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db")
    args = ap.parse_args(argv)

    from leaderboards import build, to_text
    from leaderboards.source import records_from_mlflow
    from leaderboards.write import FORMATS, write

    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        print(f"error: unknown format {','.join(bad) or args.format!r}; accepted: {', '.join(FORMATS)}", file=sys.stderr)
        return 2
    uri = tracking.resolve_uri(args.tracking_uri)
    try:
        if args.run:
            groups = records_from_mlflow(parent_run_id=args.run, tracking_uri=uri)
        elif args.experiment:
            groups = records_from_mlflow(experiment=args.experiment, tracking_uri=uri)
        else:
            import mlflow

            mlflow.set_tracking_uri(uri)
            groups = {}
            for exp in mlflow.search_experiments():
                for key, recs in records_from_mlflow(experiment=exp.name, tracking_uri=uri).items():
                    groups.setdefault(key, []).extend(recs)
    except LookupError as e:
        print(f"error: {e.args[0]}", file=sys.stderr)
        return 2
    except Exception as e:  # MLflow's "run not found" and the like
        print(f"error: cannot read runs from {uri!r}: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
              file=sys.stderr)
        return 2
    if not groups:
        print(f"error: no dofbench member runs found in {uri!r}; run `python -m benchmark run` first", file=sys.stderr)
        return 2
    for (dataset, model), records in sorted(groups.items()):
        lb = build(records, dataset, model)
        out = Path(args.out) / f"{dataset}-{model}"
        paths = write(lb, out, formats)
        print(f"\n{dataset} / {model} (D = {lb.D:,}), {len(records)} members:\n{to_text(lb)}")
        print("wrote " + ", ".join(str(p) for p in paths))
    return 0
