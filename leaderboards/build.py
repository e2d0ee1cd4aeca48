"""A leaderboard from run records: ranked table, threshold dimensions, success probabilities.

Records are plain dicts, one per member: method, ratio, d, D, seed, lr, status, val_acc, val_loss,
test_acc, train_acc, prep_steps (as logged on child runs). Works the same on fresh outcomes and on runs
read from MLflow. Every cell (method, ratio) first keeps only its candidate learning rate selected on
validation (`leaderboards.selection`); everything below reads those records alone.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field

import numpy as np

from leaderboards.bits import BitsRow, build_bits
from leaderboards.bits import to_markdown as bits_markdown
from leaderboards import paired
from leaderboards.selection import FAILED, select, selected_only
from leaderboards.table import format_acc, summarize, typical_n
from leaderboards.threshold import (Threshold, dstar, format_threshold, success_probability,
                                    threshold_training_dimension)

FAMILY_ORDER = ("full", "pruning", "general")


@dataclass
class MethodRow:
    method: str
    threshold: Threshold | None  # None for `full`
    prep_steps: float
    acc: dict[float, dict]  # ratio -> summary (mean, std, n, failed, d)
    lrs: dict[float, float | None] = field(default_factory=dict)  # ratio -> selected lr (None: every lr failed)
    D: int = 0
    anchor: str = "w0"  # the offset's origin: "w0" or "wt"
    theta0_acc: dict[float, float] = field(default_factory=dict)  # ratio -> seed-mean test acc at θ = 0 (w = b)
    # ratio -> (fewest, most) principal directions over seeds, where a lottery basis is partly random (r < d)
    principal: dict[float, tuple[int, int]] = field(default_factory=dict)
    at_theta0: bool = False  # the target is reached already at θ = 0 where the threshold is: no subspace result

    @property
    def compression(self) -> float | None:
        if self.threshold is None or self.threshold.d is None or self.at_theta0:
            return None
        return self.D / self.threshold.d


@dataclass
class Leaderboard:
    dataset: str
    model: str
    D: int
    ratios: list[float]
    full_acc: float
    rows: list[MethodRow]  # ranked
    full_train_acc: float = math.nan  # the reference's seed-mean train accuracy (converged: >= CONVERGED)
    eps: list[float] = field(default_factory=list)
    success: dict[str, np.ndarray] = field(default_factory=dict)  # method -> (n_eps, n_d)
    success_ds: dict[str, list[float]] = field(default_factory=dict)
    dstar_eps: dict[str, list[float | None]] = field(default_factory=dict)
    seeds: list = field(default_factory=list)  # the seeds; row s of every per-seed array below is seeds[s]
    # method -> ratio -> (S,) test accuracy per seed (NaN: failed), for paired comparisons
    seed_acc: dict[str, dict[float, np.ndarray]] = field(default_factory=dict)
    anchors: dict[str, float] = field(default_factory=dict)  # "w0" / "wt" -> seed-mean test acc of the anchor alone
    # "layer_density" / "layer_shift" -> method -> ratio -> {parameter: seed mean} (see layer_views)
    layers: dict[str, dict[str, dict[float, dict[str, float]]]] = field(default_factory=dict)
    # code -> rows ranked by bits*90, the leaderboard at matched description length (leaderboards.bits)
    bits: dict[str, list[BitsRow]] = field(default_factory=dict)


def _matrix(records, method, metric, ratios, seeds):
    """(S, n_ratio) of metric per seed and ratio, NaN where missing or FAILED."""
    out = np.full((len(seeds), len(ratios)), np.nan)
    for r in records:
        if r["method"] == method and r["status"] == "FINISHED":
            out[seeds.index(r["seed"]), ratios.index(float(r["ratio"]))] = float(r[metric])
    return out


def build(records: list[dict], dataset: str = "", model: str = "", eps: list[float] | None = None,
          delta: float = 0.5, fraction: float = 0.9) -> Leaderboard:
    if not records:
        raise ValueError("no runs to build a leaderboard from")
    chosen = select(records)
    bits = build_bits(records, fraction)
    records = selected_only(records)
    D = int(records[0]["D"])
    summary = summarize(records)
    seeds = sorted({r["seed"] for r in records})
    methods = list(dict.fromkeys(r["method"] for r in records))
    full = [float(r["test_acc"]) for r in records if r["method"] == "full" and r["status"] == "FINISHED"]
    full_acc = float(np.mean(full)) if full else math.nan
    if eps is None:
        chance = 1.0 / max(2, int(records[0].get("num_classes", 10)))
        full_train = [float(r["train_acc"]) for r in records if r["method"] == "full" and r["status"] == "FINISHED"]
        top = float(np.mean(full_train)) if full_train else 1.0
        eps = [round(float(e), 3) for e in np.linspace(chance + 0.5 * (top - chance) / 4, top * 0.98, 6)]

    rows, success, success_ds, dstar_eps, seed_acc = [], {}, {}, {}, {}
    for m in methods:
        rs = [r for r in records if r["method"] == m]
        ratios = sorted({float(r["ratio"]) for r in rs}, reverse=True)  # ascending d
        ds = [float(summary[(m, ratio)]["d"]) for ratio in ratios]
        acc = {ratio: summary[(m, ratio)] for ratio in ratios}
        threshold = None
        test = _matrix(records, m, "test_acc", ratios, seeds)
        seed_acc[m] = {ratio: test[:, j] for j, ratio in enumerate(ratios)}  # for paired comparisons
        if m != "full" and full:
            threshold = dstar(test, ds, np.array(full), fraction)
        prep = [float(r.get("prep_steps", 0) or 0) for r in rs]
        if threshold is not None and threshold.d is not None:
            at = [r for r in rs if float(r["d"]) >= threshold.d - 1e-9]
            at_d = min(float(r["d"]) for r in at)
            prep = [float(r.get("prep_steps", 0) or 0) for r in at if float(r["d"]) == at_d]
        lrs = {ratio: None if chosen[(m, ratio)] == FAILED else chosen[(m, ratio)] for ratio in ratios}
        row = MethodRow(m, threshold, float(np.mean(prep)) if prep else 0.0, acc, lrs, D,
                        anchor=str(rs[0].get("anchor") or "w0"), theta0_acc=_cell_means(rs, "theta0_test_acc"),
                        principal=_partly_random(rs))
        row.at_theta0 = _reached_at_theta0(row, ds, ratios)
        rows.append(row)
        train = _matrix(records, m, "train_acc", ratios, seeds)
        success[m] = success_probability(train, eps)
        success_ds[m] = ds
        dstar_eps[m] = threshold_training_dimension(success[m], ds, delta)

    def rank_key(row: MethodRow):
        if row.method == "full":
            return (0, 0.0)
        c = row.compression
        return (1, -c) if c is not None else (2, 0.0)

    rows.sort(key=rank_key)
    all_ratios = sorted({float(r["ratio"]) for r in records})
    full_train = [float(r["train_acc"]) for r in records if r["method"] == "full" and r["status"] == "FINISHED"]
    return Leaderboard(dataset, model, D, all_ratios, full_acc, rows, float(np.mean(full_train)) if full_train
                       else math.nan, eps, success, success_ds, dstar_eps, seeds, seed_acc, _anchors(records),
                       layer_views(records), bits)


def layer_views(records: list[dict]) -> dict[str, dict[str, dict[float, dict[str, float]]]]:
    """Per view ("layer_density": share of each parameter tensor a pruning member trains; "layer_shift":
    each tensor's share of ‖w − b‖², training's displacement from the offset): method -> ratio ->
    {parameter: mean over seeds} of the FINISHED (selected) members; views no record carries are absent."""
    out: dict = {}
    for view in ("layer_density", "layer_shift"):
        sums: dict = {}
        for r in records:
            if r["status"] != "FINISHED":
                continue
            if view == "layer_shift" and not any(v for k, v in r.items() if k.startswith(view + ".")):
                continue  # a member that did not move (logged as all zeros before its shares were left out)
            for k, v in r.items():
                if k.startswith(view + ".") and v is not None and math.isfinite(float(v)):
                    cell = sums.setdefault(r["method"], {}).setdefault(float(r["ratio"]), {})
                    cell.setdefault(k[len(view) + 1:], []).append(float(v))
        if sums:
            out[view] = {m: {ratio: {n: float(np.mean(v)) for n, v in layers.items()} for ratio, layers in rs.items()}
                         for m, rs in sums.items()}
    return out


def _finite(values) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def _cell_means(rs: list[dict], metric: str) -> dict[float, float]:
    """ratio -> seed-mean of a metric over one method's (selected) records, where any seed logged it."""
    out = {}
    for ratio in {float(r["ratio"]) for r in rs}:
        vals = _finite(r.get(metric) for r in rs if float(r["ratio"]) == ratio)
        if vals:
            out[ratio] = float(np.mean(vals))
    return out


def _partly_random(rs: list[dict]) -> dict[float, tuple[int, int]]:
    """ratio -> (fewest, most) principal directions over seeds, for cells whose lottery basis holds fewer
    principal directions than d (the rest is random completion)."""
    out = {}
    for ratio in {float(r["ratio"]) for r in rs}:
        cell = [r for r in rs if float(r["ratio"]) == ratio]
        dims = _finite(r.get("principal_dims") for r in cell)
        if dims and min(dims) < int(cell[0]["d"]):
            out[ratio] = (int(min(dims)), int(max(dims)))
    return out


def _reached_at_theta0(row: MethodRow, ds: list[float], ratios: list[float]) -> bool:
    """Whether the model at θ = 0 (w = b) already reaches the target at the first d that reaches it:
    then the 'threshold' measures the anchor, not training in the subspace."""
    t = row.threshold
    if t is None or t.d is None:
        return False
    at = max((r for d, r in zip(ds, ratios) if d >= t.d - 1e-9), default=None)  # the smallest such d
    return at is not None and row.theta0_acc.get(at, -math.inf) >= t.target


def _anchors(records: list[dict]) -> dict[str, float]:
    """"w0" / "wt" / "wp" -> seed-mean test accuracy of the anchor alone: members of general subspaces at θ = 0
    (their offset is the whole anchor; a pruned offset is masked)."""
    out = {}
    for anchor in ANCHOR_NAMES:
        by_seed = {}
        for r in records:
            if r.get("family") == "general" and r.get("anchor") == anchor:
                v = _finite([r.get("theta0_test_acc")])
                if v:
                    by_seed.setdefault(r["seed"], v[0])
        if by_seed:
            out[anchor] = float(np.mean(list(by_seed.values())))
    return out


ANCHOR_NAMES = {"w0": "w0", "wt": "w_t", "wp": "w_pretrained"}


def anchors_note(lb: Leaderboard) -> str:
    """The line that says what each anchor scores alone (θ = 0), so a reader credits training, not the anchor."""
    if not lb.anchors:
        return ""
    parts = [f"{ANCHOR_NAMES[a]} alone {v:.3f}" for a, v in lb.anchors.items()]
    return ("anchors at θ = 0 (test accuracy, seed mean): " + ", ".join(parts)
            + "; a threshold the anchor reaches by itself is reported as 'reached at θ = 0', not ranked")


CONVERGED = 0.98  # train accuracy at which a reference counts as converged (trained to fit its data)


def reference_note(lb: Leaderboard) -> str:
    """One line on what the 90% target rests on: the reference's lr, train and test accuracy, and
    whether it converged under the preset's budget."""
    full = next((row for row in lb.rows if row.method == "full"), None)
    if full is None or not math.isfinite(lb.full_acc):
        return "reference: none (no FINISHED `full` run), so no d*90"
    lr = full.lrs.get(1.0)
    chosen = f"lr {lr:g} chosen on validation, " if lr is not None and math.isfinite(lr) else ""
    note = (f"reference: full network, {chosen}train accuracy {lb.full_train_acc:.3f}, "
            f"test accuracy {lb.full_acc:.3f} (90% target {0.9 * lb.full_acc:.3f})")
    if lb.full_train_acc >= CONVERGED:
        return note + f"; converged (train >= {CONVERGED:g})"
    return (note + f"; NOT CONVERGED: train accuracy below {CONVERGED:g} under this budget, so every "
            f"'90% of the reference' threshold rests on an under-trained network (train longer: epochs=)")


def ratio_text(r: float) -> str:
    """A compression ratio for a reader: 4, 1024, 26.2, 2.52 (an extension wave's D/d has many digits)."""
    return f"{r:.0f}" if r >= 100 else f"{r:.3g}"


def _fmt_lr(v: float | None) -> str:
    return "-" if v is None else "n/a" if math.isnan(v) else f"{v:g}"


def lr_rows(lb: Leaderboard) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the table of selected learning rates (one per method and D/d)."""
    header = ["method"] + [f"lr @ D/d={ratio_text(r)}" for r in lb.ratios]
    return header, [[row.method] + ["" if r not in row.lrs else _fmt_lr(row.lrs[r]) for r in lb.ratios]
                    for row in lb.rows]


def table_rows(lb: Leaderboard) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the ranked table, as strings."""
    header = (["rank", "method", "d*90 [95% CI]", "D/d*90", "acc at θ = 0"] + [f"acc @ D/d={ratio_text(r)}" for r in lb.ratios]
              + ["prep steps"])
    out = []
    rank = 0
    n = table_n(lb)
    for row in lb.rows:
        if row.method == "full":
            dcell, comp, rk = f"{lb.D:,} (reference)", "1", "-"
        else:
            t = row.threshold
            rank += not row.at_theta0  # an anchor's own result is no subspace result: not ranked
            rk = "-" if row.at_theta0 else str(rank)
            if t is None or t.d is None:
                dcell, comp = "not reached" if t is None else format_threshold(t, n), "-"
                if t is not None:  # an open bound: say how far it was looked for
                    dcell += f" (> {max(row.acc[r]['d'] for r in row.acc):,} tested)"
            elif row.at_theta0:
                dcell, comp = f"reached at θ = 0 ({ANCHOR_NAMES.get(row.anchor, row.anchor)} alone)", "-"
            else:
                dcell = format_threshold(t, n)  # "≤ d" when reached at the smallest tested d: test smaller ones
                comp = f"{'≥ ' if t.upper_bound else ''}{row.compression:,.1f}"
        accs = ["" if row.acc.get(r) is None else format_acc(row.acc[r], n) + _basis_label(row, r) for r in lb.ratios]
        out.append([rk, row.method, dcell, comp, _theta0_cell(row)] + accs + [f"{row.prep_steps:,.0f}"])
    return header, out


def _basis_label(row: MethodRow, ratio: float) -> str:
    """' (r principal + d - r random)' for a lottery cell whose basis is partly random completion."""
    if ratio not in row.principal:
        return ""
    lo, hi = row.principal[ratio]
    d = row.acc[ratio]["d"]
    r = f"{lo:,}" if lo == hi else f"{lo:,}-{hi:,}"
    rest = f"{d - lo:,}" if lo == hi else f"{d - hi:,}-{d - lo:,}"
    return f" ({r} principal + {rest} random)"


def _theta0_cell(row: MethodRow) -> str:
    """The member at θ = 0 (w = b): one value when it is the same at every d (an unmasked anchor), else
    the range over d (a pruned anchor depends on the mask)."""
    vals = list(row.theta0_acc.values())
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    return f"{lo:.3f}" if hi - lo < 0.0005 else f"{lo:.3f}-{hi:.3f}"


# --- seeds and paired comparisons (n stated once; each method vs the next in the ranking) ---

def table_n(lb: Leaderboard) -> int:
    """The number of seeds most cells rest on; a cell on another number says its own n."""
    return typical_n([c for row in lb.rows for c in row.acc.values()])


def seeds_note(lb: Leaderboard) -> str:
    """The line under the table that states n and what the intervals are."""
    n = table_n(lb)
    acc = (f"accuracy: mean ± std over n = {n} seeds" if n > 1
           else "accuracy: a single seed (n = 1), so no spread and no interval" if n == 1
           else "accuracy: no finished member")
    return (f"{acc} (a cell over another number of seeds says its n). d*90: the seed-mean curve's crossing; "
            f"[95% CI]: Student-t on log d over each seed's own crossing (df = n - 1), clipped to the tested "
            f"d; '≤' below the tested range (a seed reached the target at the smallest d), 'not reached' above "
            f"it (a seed never did).")


def comparisons(lb: Leaderboard) -> list[paired.Comparison]:
    """Each ranked method vs the next (`full` excluded): d*90 and accuracy, seed by seed."""
    ranked = [row for row in lb.rows if row.threshold is not None]
    bounds = {row.method: np.array(row.threshold.per_seed, dtype=float).reshape(-1, 2) for row in ranked}
    accs = {m: lb.seed_acc[m] for m in bounds if m in lb.seed_acc}
    return paired.adjacent([row.method for row in ranked], bounds, accs)


def paired_section(lb: Leaderboard, table) -> list[str]:
    """The paired-comparisons section, rendered by `table` (markdown or text); [] when nothing to compare."""
    header, rows = paired.table_rows(comparisons(lb))
    if not rows:
        return []
    return ["", "Paired comparisons, each method vs the next in the ranking: per-seed differences of "
            "log10 d*90 (a seed shares initialization and data order across methods), mean [Student-t 95% CI]; "
            "A < B: A reaches 90% at a smaller d. One-sided where a seed's threshold lies outside the tested "
            "range; accuracy differences per D/d in paired.csv.", "", *table(header, rows)]


def paired_csv(lb: Leaderboard) -> str:
    return paired.to_csv(comparisons(lb))

# --- end seeds and paired comparisons ---


def _markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return (["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
            + ["| " + " | ".join(r) + " |" for r in rows])


def to_markdown(lb: Leaderboard) -> str:
    """The reference line, the ranked table, and the learning rate each cell selected on validation."""
    return "\n".join([reference_note(lb), "", *_markdown_table(*table_rows(lb)), "", seeds_note(lb),
                      *_notes(lb, blank=True),
                      *paired_section(lb, _markdown_table), "",
                      "Learning rate selected on validation per cell:", "", *_markdown_table(*lr_rows(lb)),
                      *(["", "## At matched description length", "", bits_markdown(lb.bits)] if lb.bits else [])])


def no_result_cells(lb: Leaderboard) -> dict[str, list[tuple[str, float]]]:
    """"diverged" / "failed" -> the (method, ratio) cells with no finite test accuracy at any lr."""
    out: dict[str, list[tuple[str, float]]] = {"diverged": [], "failed": []}
    for row in lb.rows:
        for r, cell in sorted(row.acc.items()):
            if cell["n"] == 0:
                out["diverged" if cell.get("diverged") else "failed"].append((row.method, r))
    return out


def no_result_note(lb: Leaderboard) -> str:
    """One line naming every cell without a result, e.g. 'diverged at every lr (no finite accuracy):
    random_affine at D/d 8, 64'; '' when every cell has one."""
    def cells(pairs):
        by: dict[str, list[float]] = {}
        for m, r in pairs:
            by.setdefault(m, []).append(r)
        return "; ".join(f"{m} at D/d {', '.join(ratio_text(r) for r in rs)}" for m, rs in by.items())

    found = no_result_cells(lb)
    parts = [f"{kind} at every lr (no finite accuracy): {cells(pairs)}" for kind, pairs in found.items() if pairs]
    return ". ".join(parts)


def _notes(lb: Leaderboard, blank: bool = False) -> list[str]:
    """The anchors' own accuracy, the cells without a result and what a partly random lottery cell is, each a
    line (markdown: a paragraph)."""
    lines = [anchors_note(lb), no_result_note(lb)]
    if any(row.principal for row in lb.rows):
        lines.append("(r principal + k random): a lottery basis of d directions whose trajectory spans only r; the "
                     "other k are random orthonormal completion, so the cell is partly a random subspace")
    return [x for line in lines if line for x in (["", line] if blank else [line])]


def _text_table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    fmt = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths))
    return [fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]


def to_text(lb: Leaderboard) -> str:
    """The same as to_markdown, for a terminal: aligned columns."""
    return "\n".join([reference_note(lb), "", *_text_table(*table_rows(lb)), seeds_note(lb), *_notes(lb),
                      *paired_section(lb, _text_table), "",
                      "learning rate selected on validation per cell:", *_text_table(*lr_rows(lb))])


def to_csv(lb: Leaderboard) -> str:
    """One row per method, machine-readable (numbers unformatted; empty = not reached)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    acc_cols = ([f"acc_mean_r{r:g}" for r in lb.ratios] + [f"acc_std_r{r:g}" for r in lb.ratios]
                + [f"lr_r{r:g}" for r in lb.ratios])
    new_cols = ["dstar90_n", "dstar90_low_open", "dstar90_high_open", "dstar90_seeds"] + [
        f"acc_n_r{r:g}" for r in lb.ratios] + ["reached_at_theta0"] + [f"theta0_acc_r{r:g}" for r in lb.ratios] + [
        f"principal_r{r:g}" for r in lb.ratios]  # appended: readers by column position keep working
    w.writerow(["rank", "method", "D", "dstar90", "dstar90_low", "dstar90_high", "dstar90_upper_bound",
                "compression90", "prep_steps"] + acc_cols + new_cols)
    rank = 0
    num = lambda v, p=6: "" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{p}g}"
    for row in lb.rows:
        t = row.threshold
        rank += row.method != "full" and not row.at_theta0
        means = [num(row.acc[r]["mean"]) if r in row.acc else "" for r in lb.ratios]
        stds = [num(row.acc[r]["std"]) if r in row.acc else "" for r in lb.ratios]
        lrs = [num(row.lrs.get(r)) for r in lb.ratios]
        ns = [str(row.acc[r]["n"]) if r in row.acc else "" for r in lb.ratios]
        extra = [t.n, int(t.low_open), int(t.high_open), _seeds_text(t)] if t else ["", "", "", ""]
        w.writerow([0 if row.method == "full" else "" if row.at_theta0 else rank, row.method, lb.D,
                    num(t.d if t else float(lb.D)), num(t.low if t else None), num(t.high if t else None),
                    int(bool(t and t.upper_bound)), num(row.compression if t else 1.0), num(row.prep_steps)]
                   + means + stds + lrs + extra + ns + [int(row.at_theta0)]
                   + [num(row.theta0_acc.get(r)) for r in lb.ratios]
                   + [str(row.principal[r][0]) if r in row.principal else "" for r in lb.ratios])
    return buf.getvalue()


def _seeds_text(t: Threshold) -> str:
    """Each seed's own d*90, ';'-separated in seed order: 'c', '<=d' (reached at its smallest d),
    '>d' (never reached; d its largest tested), '' (no curve)."""
    cell = lambda lo, hi: ("" if math.isnan(lo) else f">{lo:.6g}" if math.isinf(hi) else f"<={hi:.6g}" if lo == 0
                           else f"{lo:.6g}")
    return ";".join(cell(lo, hi) for lo, hi in t.per_seed)


def success_csv(lb: Leaderboard) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["method", "eps", "d", "P_s", "dstar_eps"])
    for m, ps in lb.success.items():
        for i, e in enumerate(lb.eps):
            for j, d in enumerate(lb.success_ds[m]):
                ds = lb.dstar_eps[m][i]
                w.writerow([m, e, int(d), f"{ps[i, j]:.4g}", "" if ds is None else int(ds)])
    return buf.getvalue()


def to_html(lb: Leaderboard) -> str:
    header, rows = table_rows(lb)
    esc = lambda s: s.replace("&", "&amp;").replace("<", "&lt;")
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return (f"<html><head><meta charset='utf-8'><title>{lb.dataset}-{lb.model}</title></head><body>"
            f"<h1>{esc(lb.dataset)} / {esc(lb.model)} (D = {lb.D:,})</h1><p>{esc(reference_note(lb))}</p>"
            f"<table border='1' cellpadding='4'><tr>{head}</tr>{body}</table><p>{esc(seeds_note(lb))}</p>"
            + "".join(f"<p>{esc(line)}</p>" for line in _notes(lb)) +
            "<p><img src='accuracy_vs_compression.png' width='720'></p></body></html>")
