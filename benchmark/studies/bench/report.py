"""The report of `python -m benchmark bench`: its rows as aligned text tables."""
from __future__ import annotations


def table(rows: list[dict], keys: list[str]) -> str:
    widths = [max(len(k), *(len(str(r[k])) for r in rows)) for k in keys]
    line = lambda vals: "  ".join(str(v).rjust(w) for v, w in zip(vals, widths))
    return "\n".join([line(keys)] + [line([r[k] for k in keys]) for r in rows])
