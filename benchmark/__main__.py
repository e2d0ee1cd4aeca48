"""`python -m benchmark VERB ...`: run (Hydra overrides follow), list."""
from __future__ import annotations

import sys

USAGE = """usage: python -m benchmark VERB [ARGS]

verbs:
  run [OVERRIDES...]   run the benchmark grid (Hydra overrides, e.g. preset=smoke seeds=[0,1])
  list                 list datasets, models, methods and presets
  bench [OPTIONS]      time subspace steps against full-space steps (--help for options)
  leaderboard [OPTS]   tables and plots from the runs in MLflow (--help for options)
  golden [--update]    run the smoke preset and compare its leaderboard with the committed golden one
  reproduce RUN_ID     re-run one member run from what it logged; compare old and new metrics
  theory [OPTIONS]     predicted vs measured threshold dimension on quadratic landscapes
"""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    verb, rest = argv[0], argv[1:]
    if verb == "run":
        from benchmark.cli import run_with_hydra

        return run_with_hydra(rest)
    if verb == "list":
        from benchmark.cli import list_everything

        return list_everything()
    if verb == "leaderboard":
        from benchmark.cli import leaderboard_main

        return leaderboard_main(rest)
    if verb == "bench":
        from benchmark.bench import main as bench

        return bench(rest)
    if verb == "golden":
        from benchmark.golden import main as golden

        return golden(rest)
    if verb == "reproduce":
        from benchmark.reproduce import main as reproduce

        return reproduce(rest)
    if verb == "theory":
        from benchmark.theory import main as theory

        return theory(rest)
    print(f"error: unknown verb {verb!r}; accepted: bench, golden, leaderboard, list, reproduce, run, theory", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
