"""`python -m benchmark VERB ...`: one registry of verbs; USAGE and the unknown-verb error read it."""
from __future__ import annotations

import importlib
import os
import sys

# verb -> (module:function taking the remaining argv and returning an exit code, its arguments, what it does)
VERBS = {
    "run": ("benchmark.cli:run_with_hydra", "[OVERRIDES...]",
            "run the benchmark grid (Hydra overrides, e.g. preset=smoke seeds=[0,1])"),
    "list": ("benchmark.cli:list_everything", "", "list datasets, models, projections, presets and methods"),
    "bench": ("benchmark.bench:main", "[OPTIONS]", "time subspace steps against full-space steps (--help for options)"),
    "leaderboard": ("benchmark.cli:leaderboard_main", "[OPTS]",
                    "tables and plots from the runs in MLflow (--help for options)"),
    "golden": ("benchmark.golden:main", "[--update]",
               "run the smoke preset and compare its leaderboard with the committed golden one"),
    "verify": ("benchmark.verify:main", "FOLDER",
               "re-run a committed result from its provenance.json and compare every value (identical, or the band)"),
    "reproduce": ("benchmark.reproduce:main", "RUN_ID",
                  "re-run one member run from what it logged; compare old and new metrics"),
    "theory": ("benchmark.theory:main", "[OPTIONS]",
               "predicted vs measured threshold dimension on quadratic landscapes"),
    "pack": ("benchmark.pack:main", "[OPTIONS]",
             "several tasks packed into nearly orthogonal random subspaces of one network"),
    "architectures": ("benchmark.architectures:main", "[OPTIONS]",
                      "MLP, 1D CNN and transformer at matched D, fine-tuning vs scratch, and text"),
}

USAGE = "usage: python -m benchmark VERB [ARGS]\n\nverbs:\n" + "\n".join(
    f"  {f'{verb} {args}'.strip():20s} {what}" for verb, (_, args, what) in VERBS.items()) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    verb, rest = argv[0], argv[1:]
    if verb not in VERBS:
        print(f"error: unknown verb {verb!r}; accepted: {', '.join(sorted(VERBS))}", file=sys.stderr)
        return 2
    module, function = VERBS[verb][0].split(":")
    try:
        return getattr(importlib.import_module(module), function)(rest)
    except BrokenPipeError:  # the reader went away (`python -m benchmark list | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
