"""The verbs of `python -m benchmark`, one registry: each verb is one function taking the remaining argv
and returning an exit code, in its own module (a study's verb is its study's cli), loaded only when used
so that `python -m benchmark list` does not import Hydra, MLflow and every study. USAGE, the unknown-verb
error and `verify` read this registry."""
from __future__ import annotations

# verb -> (module:function taking the remaining argv and returning an exit code, its arguments, what it does)
VERBS = {
    "run": ("benchmark.verbs.run:run_with_hydra", "[OVERRIDES...]",
            "run the benchmark grid (Hydra overrides, e.g. preset=smoke seeds=[0,1])"),
    "list": ("benchmark.verbs.listing:list_everything", "", "list datasets, models, projections, presets and methods"),
    "bench": ("benchmark.studies.bench.cli:main", "[OPTIONS]", "time subspace steps against full-space steps (--help for options)"),
    "leaderboard": ("benchmark.verbs.leaderboard:leaderboard_main", "[OPTS]",
                    "tables and plots from the runs in MLflow (--help for options)"),
    "golden": ("benchmark.verbs.golden:main", "[--update]",
               "run the smoke preset and compare its leaderboard with the committed golden one"),
    "verify": ("benchmark.verbs.verify:main", "FOLDER",
               "re-run a committed result from its provenance.json and compare every value (identical, or the band)"),
    "reproduce": ("benchmark.verbs.reproduce:main", "RUN_ID",
                  "re-run one member run from what it logged; compare old and new metrics"),
    "theory": ("benchmark.studies.theory.cli:main", "[OPTIONS]",
               "predicted vs measured threshold dimension on quadratic landscapes"),
    "pack": ("benchmark.studies.packing.cli:main", "[OPTIONS]",
             "several tasks packed into nearly orthogonal random subspaces of one network"),
    "architectures": ("benchmark.studies.architectures.cli:main", "[OPTIONS]",
                      "MLP, 1D CNN and transformer at matched D, fine-tuning vs scratch, and text"),
    "invariance": ("benchmark.studies.invariance.cli:main", "[OPTIONS]",
                   "d*90 of every method against model size (widths, depths): is it a property of the task?"),
    "burnin": ("benchmark.studies.burnin.cli:main", "[OPTIONS]",
               "d*(ε) of the \"_t\" methods against the burn-in time t, beside the anchor w_t alone"),
    "predict": ("benchmark.studies.predict.cli:main", "[OVERRIDES...] [OPTIONS]",
                "predict random-affine d*90 from the curvature at w0 (linearized network), training nothing"),
}
