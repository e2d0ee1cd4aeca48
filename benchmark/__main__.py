"""`python -m benchmark VERB ...`: dispatch through the verb registry (benchmark.verbs); USAGE and the unknown-verb error read it."""
from __future__ import annotations

import importlib
import os
import sys

from benchmark.verbs import VERBS

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
