"""`python -m benchmark run OVERRIDES`: Hydra composes the run config (benchmark/conf), we validate it
(benchmark.config) and run it (benchmark.runner), one job or a sweep's."""
from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from benchmark.config.build import build_config
from benchmark.core import schema
from benchmark.core.errors import UserError
from benchmark.runner import interrupts, provenance
from benchmark.runner.run import run
from benchmark.runner.sweep import read_sweep, record_failed_job


def _task(cfg: DictConfig) -> None:
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
    main = hydra.main(version_base="1.3", config_path="../conf", config_name="config")(_task)
    sys.argv = [sys.argv[0]] + overrides
    try:
        main()
    except KeyboardInterrupt:  # before or between jobs, outside _task's own handling
        print("interrupted", file=sys.stderr)
        return 130
    return 0
