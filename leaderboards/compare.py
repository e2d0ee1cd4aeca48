"""Compare a re-run result folder with a committed one, cell by cell: what `python -m benchmark verify` prints.

Two tolerances, chosen by what the machines have in common (benchmark.runner.provenance.same_machine):
- IDENTITY (same CPU model, versions and kernel settings): the run is bit-identical (measured), so every
  cell of every CSV and every entry of findings.json must be exactly what was committed.
- a measured rounding Band (another machine): float rounding alone moves a chaotic training run, so
  a seed-mean accuracy may move by `acc` (absolute) and a threshold d*90 by a factor `dstar` (either
  way); a threshold that is not reached counts as lying at the largest tested d, and may become "not
  reached" only where the committed interval was already open above. Cells that only the extension
  wave adds may appear or vanish (the wave is decided on validation, which rounding moves too). An
  ordering of two methods that the committed result resolved (paired CI excluding 0) must not reverse,
  and the reference's accuracy stays within `acc`. Interval ends, bits*90 (it moves in whole bit
  widths), the ranking among unresolved methods and the other CSVs (derived from the same members) are
  reported, not judged.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

CSVS = {  # file -> the columns that name a row
    "leaderboard.csv": ("method",),
    "description_length.csv": ("code", "method", "ratio"),
    "success_probability.csv": ("method", "eps", "d"),
    "paired.csv": ("method_a", "method_b", "quantity", "ratio"),
}


@dataclass(frozen=True)
class Band:
    """How far rounding alone moves a result (measured; see the README's 'Reproducibility')."""

    acc: float  # test accuracy, absolute
    dstar: float  # a threshold (d*90, its interval, bits*90) may move by this factor either way
    source: str = ""  # where it was measured

    def text(self) -> str:
        return f"rounding band: accuracy ± {self.acc:g}, thresholds × / ÷ {self.dstar:g}" + (
            f" ({self.source})" if self.source else "")


IDENTITY = None  # the tolerance on the same machine: none


@dataclass(frozen=True)
class Moved:
    """One compared value that is not identical."""

    file: str
    row: str
    column: str
    old: str
    new: str
    change: str
    tolerance: str
    ok: bool


def _num(v) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x


def _kind(file: str, column: str) -> str:
    """How a column is judged across machines: 'acc', 'dstar', or 'info' (reported, not judged)."""
    if file != "leaderboard.csv":
        return "info"
    if column.startswith(("acc_mean_r", "theta0_acc_r")):
        return "acc"
    if column == "dstar90":
        return "dstar"
    return "info"


def _judge(kind: str, old: str, new: str, band: Band | None, largest_d: float | None,
           open_above: bool = False, extension: bool = False) -> tuple[str, str, bool]:
    """(change, tolerance, ok) of one value that differs from the committed one. largest_d: the largest d
    the committed row tested; open_above: its interval was open above; extension: an extension-wave cell."""
    a, b = _num(old), _num(new)
    if band is None:
        return (f"{b - a:+.6g}" if a is not None and b is not None else "changed"), "identical", False
    if kind == "acc":
        if a is None or b is None or math.isnan(a) or math.isnan(b):
            return ("appeared" if a is None else "vanished"), "extension cells may differ" if extension else \
                f"± {band.acc:g}", extension
        return f"{b - a:+.4f}", f"± {band.acc:g}", abs(b - a) <= band.acc + 1e-12
    if kind == "dstar":
        if b is None and open_above:
            return "not reached now", "committed interval open above", True
        # not reached: at least the largest tested d, so compare with that bound
        a = a if a is not None and math.isfinite(a) else largest_d
        b = b if b is not None and math.isfinite(b) else largest_d
        if not a or not b:
            return "changed", f"× / ÷ {band.dstar:g}", False
        factor = b / a
        return f"× {factor:.3g}", f"× / ÷ {band.dstar:g}", max(factor, 1 / factor) <= band.dstar * (1 + 1e-9)
    return (f"{b - a:+.6g}" if a is not None and b is not None else "changed"), "not judged across machines", True


def _rows(text: str, key: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """Rows by their key columns; a table without known keys (a study's) by its line number."""
    rows = list(csv.DictReader(io.StringIO(text)))
    if not key:
        return {f"line {i + 2}": r for i, r in enumerate(rows)}
    return {"/".join(r.get(k, "") for k in key): r for r in rows}


def _grid_ratios(rows) -> set[float]:
    """The D/d every method of the grid ran at (those of the extension wave are some methods' only)."""
    sets = [{_num(c[len("acc_mean_r"):]) for c, v in r.items() if c.startswith("acc_mean_r") and v}
            for r in rows if r.get("method") != "full"]
    return set.intersection(*sets) if sets else set()


def largest_tested_d(row: dict[str, str]) -> float | None:
    """The largest d a leaderboard row tested (D / the smallest ratio with an accuracy)."""
    D = _num(row.get("D"))
    ratios = [_num(c[len("acc_mean_r"):]) for c, v in row.items() if c.startswith("acc_mean_r") and v not in ("", None)]
    ratios = [r for r in ratios if r]
    return D / min(ratios) if D and ratios else None


def compare_csv(file: str, old_text: str, new_text: str, band: Band | None) -> list[Moved]:
    key = CSVS.get(file, ())
    old, new = _rows(old_text, key), _rows(new_text, key)
    out = [Moved(file, k, "(row)", "present", "missing", "missing", "identical" if band is None else "judged",
                 band is not None and file != "leaderboard.csv") for k in old if k not in new]
    out += [Moved(file, k, "(row)", "missing", "present", "new", "identical" if band is None else "judged",
                  band is not None and file != "leaderboard.csv") for k in new if k not in old]
    grid = _grid_ratios(old.values()) if file == "leaderboard.csv" else set()
    for k in (k for k in old if k in new):
        a, b = old[k], new[k]
        largest = largest_tested_d(a) if file == "leaderboard.csv" else None
        for col in dict.fromkeys([*a, *b]):
            va, vb = a.get(col, ""), b.get(col, "")
            if va == vb:
                continue
            ratio = _num(col.rsplit("_r", 1)[-1]) if "_r" in col else None
            change, tol, ok = _judge(_kind(file, col), va, vb, band, largest, a.get("dstar90_high_open") == "1",
                                     extension=ratio is not None and ratio not in grid)
            out.append(Moved(file, k, col, va or "-", vb or "-", change, tol, ok))
    return out


def _flatten(d, prefix: str = "") -> dict[str, object]:
    if isinstance(d, dict):
        return {k: v for key, val in d.items() for k, v in _flatten(val, f"{prefix}{key}.").items()}
    if isinstance(d, list) and all(isinstance(x, dict) and "a" in x and "b" in x for x in d):
        return {k: v for x in d for k, v in _flatten(x, f"{prefix}{x['a']} vs {x['b']}.").items()}
    return {prefix.rstrip("."): d}


def compare_findings(old: dict, new: dict, band: Band | None) -> list[Moved]:
    """Every entry of findings.json. Across machines: thresholds within the band, the reference's accuracy
    within it, and no resolved ordering reversed; the ranking and unresolved verdicts are reported."""
    a, b = _flatten(old), _flatten(new)
    out = []
    for k in dict.fromkeys([*a, *b]):
        va, vb = a.get(k), b.get(k)
        if va == vb:
            continue
        show = lambda v: json.dumps(v) if not isinstance(v, str) else v
        if band is None:
            out.append(Moved("findings.json", k, "", show(va), show(vb), "changed", "identical", False))
            continue
        leaf = k.rsplit(".", 1)[-1]
        if k.startswith("reference.") and leaf in ("test_acc", "train_acc", "target"):
            change, tol, ok = _judge("acc", show(va), show(vb), band, None)
        elif k.startswith("thresholds."):
            change, tol, ok = "changed", "judged in leaderboard.csv", True
        elif k.startswith("orderings.") and leaf == "relation":
            change, tol, ok = "reversed" if va and vb else "resolved" if vb else "no longer resolved", \
                "a resolved ordering keeps its sign", not (va and vb and va != vb)
        else:
            change, tol, ok = "changed", "not judged across machines", True
        out.append(Moved("findings.json", k, "", show(va), show(vb), change, tol, ok))
    return out


def compare_folders(committed: Path, rerun: Path, band: Band | None) -> tuple[list[Moved], int]:
    """(every value that is not identical, how many values were compared)."""
    moved, compared = [], 0
    for file in sorted(p.name for p in committed.glob("*.csv")):
        old = (committed / file).read_text()
        new = (rerun / file).read_text() if (rerun / file).is_file() else ""
        moved += compare_csv(file, old, new, band)
        compared += sum(len(r) for r in csv.DictReader(io.StringIO(old)))
    if (committed / "findings.json").is_file():
        old = json.loads((committed / "findings.json").read_text())
        new = json.loads((rerun / "findings.json").read_text()) if (rerun / "findings.json").is_file() else {}
        moved += compare_findings(old, new, band)
        compared += len(_flatten(old))
    return moved, compared


def table(moved: list[Moved], limit: int = 60) -> str:
    """What moved, the values outside tolerance first."""
    rows = sorted(moved, key=lambda m: m.ok)[:limit]
    header = ("file", "row", "column", "committed", "now", "change", "tolerance", "")
    cells = [header] + [(m.file, m.row, m.column, m.old[:28], m.new[:28], m.change, m.tolerance,
                         "ok" if m.ok else "OUTSIDE") for m in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells]
    if len(moved) > limit:
        lines.append(f"... and {len(moved) - limit} more (--json FILE writes them all)")
    return "\n".join(lines)


# The largest moves measured on the default run (README, "Reproducibility"), from two rounding-only
# perturbations of the same code: MKL's own GEMM kernels instead of the pinned CBWR=AVX2 ones on one
# AVX2 EPYC (seed-mean accuracy cells: median 0.002, max 0.037; d*90 reached in both: up to x1.22), and
# torch's AVX-512 kernels instead of its AVX2 ones (reference 0.626 -> 0.643; d*90 up to x1.69).
ROUNDING_BAND = Band(acc=0.04, dstar=1.7, source="the largest moves measured on the default run, two perturbations")
