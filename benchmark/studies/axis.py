"""A study along one axis (a model's size, a burn-in time, ...): the same `run` at every point of the
axis, each point a list of `run` overrides, all under one MLflow parent run.

Nothing here trains: a point is a whole `python -m benchmark run` (the reference's lr chosen on
validation, every cell's lr on validation, seeds, intervals, the extension wave), nested under the
study's parent as a job with its members under it, with the tags `run` gives them. A point's
thresholds d*(ε) are its leaderboard's (leaderboards.build at target fraction ε), so a study inherits
the protocol and never re-implements it. Members FINISHED in the study's experiment with the same
config are reused, so an interrupted study resumes where it stopped.

A new axis is a new list of Points, e.g. the learning rate of full-space training:
    [Point(f"lr={x:g}", x, (f"lr={x}",)) for x in (1e-3, 3e-3, 1e-2)]
or the training-set size (`dataset.train_size=`), or the optimizer (`optimizer=sgd`).
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import math
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.config.build import RunConfig, build_config
from benchmark.config.compose import compose
from benchmark.core.errors import UserError
from benchmark.data.registry import load_dataset
from benchmark.runner import interrupts, provenance, tracking
from benchmark.runner.context import resolve_device
from benchmark.runner.memory import default_memory_budget
from benchmark.runner.run import check_burn_in, run
from benchmark.runner.sweep import Sweep
from leaderboards import build
from leaderboards.source import records_from_mlflow

# Model families a study names as `family:spec`: family -> (spec pattern, what it means, spec -> `run` overrides)
FAMILIES = {
    "fc": (r"(\d+)x(\d+)", "WIDTHxDEPTH, e.g. fc:100x2",
           lambda w, depth: ("model=fc", f"model.width={int(w)}", f"model.depth={int(depth)}")),
    "conv": (r"(\d+(?:-\d+){0,3})", "channels per stage, e.g. conv:8-16",
             lambda channels: ("model=conv2", f"model.channels=[{channels.replace('-', ',')}]")),
}


def model_spec(spec: str) -> tuple[str, tuple[str, ...]]:
    """'fc:100x2' -> ('fc-100x2', ('model=fc', 'model.width=100', 'model.depth=2')); a bad spec is one line."""
    family, _, body = spec.partition(":")
    if family not in FAMILIES:
        raise UserError(f"unknown model family {family!r} in {spec!r}; accepted: "
                        + ", ".join(f"{f}:{FAMILIES[f][1]}" for f in FAMILIES))
    pattern, accepted, overrides = FAMILIES[family]
    match = re.fullmatch(pattern, body)
    if not match:
        raise UserError(f"bad model {spec!r}; accepted: {family}:{accepted}")
    return f"{family}-{body}", overrides(*match.groups())


@dataclass(frozen=True)
class Point:
    label: str  # "fc-100x2", "t=64": the job's name in MLflow and the study's tables
    value: float  # where it sits on the axis (a burn-in time in steps; a model's index)
    overrides: tuple[str, ...]  # `run` overrides of this point, before the study's common ones


@dataclass
class Measured:
    point: Point
    D: int
    dataset: str
    model: str
    records: list[dict]  # the point's members (leaderboards.source records), reused ones included
    wall_s: float


@dataclass(frozen=True)
class Row:
    """One method at one point and one target fraction ε of the reference's test accuracy."""

    point: str
    value: float
    D: int
    method: str
    fraction: float  # ε: d*(ε) is the smallest d whose seed-mean test accuracy reaches ε x the reference's
    reference: float  # the full network's seed-mean test accuracy at this point
    target: float  # ε x reference
    d: float | None  # d*(ε); None: not reached at any tested d
    low: float | None  # 95% interval over seeds (leaderboards.threshold); None: open or none
    high: float | None
    upper_bound: bool  # reached already at the smallest d tested: d*(ε) <= d
    at_theta0: bool  # the member at θ = 0 (its anchor alone) already reaches the target there: no subspace result
    anchor: str  # the offset's origin: "w0" or "wt"
    anchor_acc: float  # the anchor alone (θ = 0, unmasked), seed-mean test accuracy
    n: int  # seeds with a curve

    @property
    def compression(self) -> float | None:
        return self.D / self.d if self.d else None


def configs(points: list[Point], common: list[str]) -> list[RunConfig]:
    """Every point's RunConfig, each bad value found before any work; one memory budget for all of them
    (recorded: which members share a population decides their rounding), and every dataset loadable."""
    cfgs = [build_config(compose([*p.overrides, *common])) for p in points]
    if cfgs and cfgs[0].memory_budget_mb is None:
        budget = default_memory_budget(resolve_device(cfgs[0].device)) / 2**20
        cfgs = [dataclasses.replace(c, memory_budget_mb=budget) for c in cfgs]
    sizes = {}
    for c in cfgs:  # missing files or a t beyond the budget stop the study here, not after its first point
        key = repr(sorted(c.dataset.items()))
        sizes[key] = sizes.get(key) or len(load_dataset(c.dataset).y_train)
        check_burn_in(c, sizes[key])
    return cfgs


@contextlib.contextmanager
def study_parent(verb: str, uri: str, experiment: str, params: dict):
    """The study's MLflow parent run: yields (client, parent run id); closed FINISHED, KILLED (Ctrl-C,
    SIGTERM) or FAILED. Members already logged FINISHED stay reusable whatever the status."""
    client, exp_id = tracking.open_store(uri, experiment)
    interrupts.install()
    with interrupts.deferred():
        parent = tracking.start_run(client, exp_id, f"{verb}-{time.strftime('%Y%m%d-%H%M%S')}",
                                    tags={"dofbench.kind": verb})
    status = "FAILED"
    try:
        tracking.log_values(client, parent, params=params)
        yield client, parent
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        tracking.end_run(client, parent, status)


def run_points(points: list[Point], cfgs: list[RunConfig], parent: str, uri: str, experiment: str) -> list[Measured]:
    """Each point's `run`, nested under the study's parent; its records read back from the store."""
    out = []
    for i, (point, cfg) in enumerate(zip(points, cfgs)):
        print(f"\n=== {point.label} ({i + 1} of {len(points)}) ===", flush=True)
        start = time.perf_counter()
        result = run(cfg, sweep=Sweep(parent, uri, experiment), job_name=point.label)
        records = [r for recs in records_from_mlflow(parent_run_id=result["parent_run_id"], tracking_uri=uri).values()
                   for r in recs]
        out.append(Measured(point, result["leaderboard"].D, cfg.dataset["name"], cfg.model["name"], records,
                            time.perf_counter() - start))
    return out


def rows_of(measured: list[Measured], fractions: list[float]) -> list[Row]:
    """Every (point, method but `full`, ε) threshold, from the point's leaderboard at fraction ε."""
    rows = []
    for m in measured:
        order = list(dict.fromkeys(r["method"] for r in m.records))  # as requested, not as ranked
        for f in fractions:
            lb = build(m.records, m.dataset, m.model, fraction=f)
            for r in sorted(lb.rows, key=lambda r: order.index(r.method)):
                t = r.threshold
                if r.method == "full" or t is None:
                    continue
                rows.append(Row(m.point.label, m.point.value, m.D, r.method, f, lb.full_acc, t.target, t.d,
                                t.low, t.high, t.upper_bound, r.at_theta0, r.anchor,
                                lb.anchors.get(r.anchor, math.nan), t.n))
    return rows


# One colour per method in every axis study's plots.
COLORS = {"random_affine": "#1f77b4", "lottery_subspace": "#2ca02c", "random_pruning": "#d62728",
          "lottery_ticket": "#ff7f0e", "burn_in_affine": "#9467bd", "lottery_subspace_t": "#17becf",
          "random_pruning_t": "#8c564b", "lottery_ticket_t": "#e377c2"}


def methods_of(rows: list[Row]) -> list[str]:
    return list(dict.fromkeys(r.method for r in rows))


def threshold_text(r: Row) -> str:
    """'188 [161, 218]', '≤ 1', 'not reached', or '(anchor) 12' where θ = 0 already reaches the target."""
    if r.d is None:
        return "not reached"
    cell = f"{'≤ ' if r.upper_bound else ''}{r.d:,.0f}"
    if r.low is not None and not r.upper_bound:
        cell += f" [{r.low:,.0f}, {'open' if r.high is None else f'{r.high:,.0f}'}]"
    return f"{cell} (θ = 0 reaches it)" if r.at_theta0 else cell


def log_slope(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares slope b of log y = a + b log x, and its standard error (nan with < 3 points)."""
    lx, ly = np.log(np.asarray(xs, float)), np.log(np.asarray(ys, float))
    if len(lx) < 2 or np.ptp(lx) == 0:
        return math.nan, math.nan
    b, a = np.polyfit(lx, ly, 1)
    if len(lx) < 3:
        return float(b), math.nan
    resid = ly - (a + b * lx)
    se = math.sqrt(float(resid @ resid) / (len(lx) - 2) / float(((lx - lx.mean()) ** 2).sum()))
    return float(b), se


def to_csv(rows: list[Row], point_column: str) -> str:
    """Every row, the point's label under `point_column` ("model", "t"), with D/d."""
    names = [f.name for f in dataclasses.fields(Row)]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([point_column if n == "point" else n for n in names] + ["D_over_d"])
    for r in rows:
        w.writerow([getattr(r, n) for n in names] + [r.compression])
    return buf.getvalue()


def add_options(ap, out: str, methods: list[str], presets: dict[str, dict]) -> None:
    """The options every axis study takes after its own axis: what each point's `run` gets, --out, a preset."""
    ap.add_argument("--dataset", default="digits", help="every point's dataset (a `run` dataset)")
    ap.add_argument("--methods", nargs="+", default=methods, help="`run` methods; full, the reference, is always added")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--ratios", type=float, nargs="+", default=[4, 16, 64, 256, 1024],
                    help="D/d at every point (then one extension wave)")
    ap.add_argument("--epochs", type=int, default=None, help="every member's budget (default: run's, 30)")
    ap.add_argument("--set", nargs="*", action="extend", default=[], metavar="KEY=VALUE",
                    help="more `run` overrides for every point, e.g. --set lr_grid=[1] dataset.train_size=500")
    ap.add_argument("--out", default=out, help="folder for the report, CSV and plots (default: %(default)s)")
    ap.add_argument("--preset", default=None, choices=sorted(presets),
                    help="the paper's scale, for a GPU: its values become the defaults (options given as well win)")


def apply_preset(ap, args, presets: dict[str, dict]) -> bool:
    """Make the chosen preset's values the parser's defaults; True when the arguments must be parsed again."""
    if args.preset:
        ap.set_defaults(**presets[args.preset])
    return bool(args.preset)


def common_overrides(args, model: tuple[str, ...] = (), study: list[str] = ()) -> list[str]:
    """The `run` overrides every point shares, from the options of add_options (the reference `full` added)."""
    methods = args.methods if "full" in args.methods else ["full", *args.methods]
    return [f"dataset={args.dataset}", *model, f"methods=[{','.join(methods)}]",
            f"seeds=[{','.join(map(str, args.seeds))}]", f"ratios=[{','.join(f'{r:g}' for r in args.ratios)}]",
            *study, *([f"epochs={args.epochs}"] if args.epochs else []), *args.set]


def settings_text(verb: str, argv: list[str], args, measured: list[Measured], what: str) -> str:
    """The report's first line: the command that regenerates it, its settings and the wall time per point."""
    return (f"Regenerate: `{' '.join(['python -m benchmark', verb, *argv])}`; dataset {args.dataset}{what}, seeds "
            f"{args.seeds}, D/d {[f'{r:g}' for r in args.ratios]} (and one extension wave), epochs {args.epochs or 30}; "
            "wall time per point: " + ", ".join(f"{m.point.label} {m.wall_s / 60:.1f} min" for m in measured)
            + " (members already FINISHED in the store are reused, not retrained).")


def execute(verb: str, argv: list[str], args, points: list[Point], common: list[str], fractions: list[float],
            report) -> int:
    """The study's stages: every point's config (all bad values before any work), the runs under one
    parent, the rows, then report(rows, measured, out) -> (files, parent metrics, text to print), logged on
    the parent, and provenance.json for `verify`. Exit 2 on a bad value, 130 when interrupted."""
    meter = provenance.StageMeter()
    try:
        cfgs = configs(points, common)
        out = Path(args.out)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot write to --out {str(out)!r}: {e.strerror}") from None
        uri = tracking.resolve_uri(args.tracking_uri)
        params = {k: str(v)[:500] for k, v in vars(args).items() if k not in ("tracking_uri",)}
        with study_parent(verb, uri, args.experiment, params) as (client, parent):
            measured = run_points(points, cfgs, parent, uri, args.experiment)
            files, metrics, text = report(rows_of(measured, fractions), measured, out)
            walls = {"wall_s." + re.sub(r"[^\w.\-/ ]", "", m.point.label): m.wall_s for m in measured}  # "t=0": t0
            tracking.log_values(client, parent, metrics={**metrics, **walls})
            budget = cfgs[0].memory_budget_mb
            files.append(provenance.write_study(out, verb, argv, {"runs": [c.to_dict() for c in cfgs]}, meter,
                                                cfgs[0].device, memory_budget_mb=budget,
                                                rerun_args=["--set", f"memory_budget_mb={budget}"]))
            for path in files:
                client.log_artifact(parent, str(path), verb)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: the {verb} parent run is marked KILLED; members already FINISHED are reused by "
              f"the same command", file=sys.stderr)
        return 130
    print("\n" + text)
    print(f"wrote {', '.join(str(f) for f in files)}; runs in MLflow experiment {args.experiment!r}: "
          f"{tracking.ui_command(uri)}")
    return 0
