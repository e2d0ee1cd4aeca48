"""Reading child runs back from MLflow (search_runs, and a parent's reused.json) as leaderboard records."""
from __future__ import annotations

import math

REUSED = "reused.json"  # on a parent run: the run ids of members it reused from earlier runs


def _reused_runs(parent_run_id: str, experiment_id: str):
    """The member runs a resumed parent reused (listed in its REUSED artifact), as search_runs rows."""
    import json

    import mlflow
    import pandas as pd
    from mlflow import MlflowClient

    if REUSED not in {a.path for a in MlflowClient().list_artifacts(parent_run_id)}:
        return None
    ids = json.loads(mlflow.artifacts.load_text(f"runs:/{parent_run_id}/{REUSED}"))
    frames = [mlflow.search_runs(experiment_ids=[experiment_id], max_results=100_000, filter_string=(
        "attributes.run_id IN (" + ", ".join(f"'{i}'" for i in ids[k : k + 100]) + ")"))
        for k in range(0, len(ids), 100)]
    return pd.concat(frames, ignore_index=True) if frames else None


def records_from_mlflow(experiment: str | None = None, parent_run_id: str | None = None,
                        tracking_uri: str | None = None) -> dict[tuple[str, str], list[dict]]:
    """{(dataset, model): [record, ...]} from the child runs of one parent run (and the members it
    reused from earlier runs) or of a whole experiment.

    In an experiment holding several invocations, a member run more than once (same config_hash)
    counts once: its latest FINISHED run, else its latest run.
    """
    import mlflow
    import pandas as pd

    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    if parent_run_id:
        parent = mlflow.get_run(parent_run_id)
        df = mlflow.search_runs(experiment_ids=[parent.info.experiment_id],
                                filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'",
                                max_results=100_000)
        reused = _reused_runs(parent_run_id, parent.info.experiment_id)
        if reused is not None and not reused.empty:
            df = reused if df.empty else pd.concat([df, reused], ignore_index=True)
    else:
        exp = mlflow.get_experiment_by_name(experiment)
        if exp is None:
            names = [e.name for e in mlflow.search_experiments()]
            raise LookupError(f"no experiment named {experiment!r}; experiments in this store: {', '.join(names) or 'none'}")
        df = mlflow.search_runs(experiment_ids=[exp.experiment_id], filter_string="params.method != ''",
                                max_results=100_000)
    if df.empty:
        return {}
    df = df.sort_values("start_time")
    chosen: dict[str, dict] = {}
    for _, row in df.iterrows():
        rec = record_from_row(row)
        if rec is None:
            continue
        key = rec["config_hash"] or row["run_id"]
        if key not in chosen or rec["status"] == "FINISHED" or chosen[key]["status"] != "FINISHED":
            chosen[key] = rec
    out: dict[tuple[str, str], list[dict]] = {}
    for rec in chosen.values():
        out.setdefault((rec["dataset"], rec["model"]), []).append(rec)
    return out


# Metric families read whole, whatever their suffix.
FAMILIES = ("metrics.layer_", "metrics.description_bits.", "metrics.val_acc.bits", "metrics.test_acc.bits")


def record_from_row(row) -> dict | None:
    """One child run (a row of mlflow.search_runs) as a leaderboard record; None for a run that is no member."""
    get = lambda k: row.get(k)
    method = get("params.method")
    if not isinstance(method, str) or not method:
        return None
    num = lambda k: float(get(k)) if get(k) is not None and not _isnan(get(k)) else math.nan
    # Per-layer views (layer_density.<param>, layer_shift.<param>): where the member spends its d; description
    # lengths and quantized accuracies (description_bits.<code>[.bits<b>], {val,test}_acc.bits<b>).
    extra = {k[len("metrics."):]: num(k) for k in row.keys() if str(k).startswith(FAMILIES) and not math.isnan(num(k))}
    return extra | {
        "method": method,
        "family": get("params.family"),
        "anchor": get("params.anchor"),
        "dataset": get("params.dataset"),
        "model": get("params.model"),
        "D": int(float(get("params.D"))),
        "d": int(float(get("params.d"))),
        "ratio": float(get("params.ratio")),
        "seed": int(float(get("params.seed"))),
        "status": get("status"),
        "config_hash": get("params.config_hash"),
        # the metric its cell's lr is chosen on (NaN or absent: logged before select_on existed)
        "select_on": get("params.select_on") if isinstance(get("params.select_on"), str) else "val_acc",
        "lr": float(get("params.lr")) if get("params.lr") not in (None, "") and not _isnan(get("params.lr")) else None,
        "val_acc": num("metrics.val_acc"),
        "val_loss": num("metrics.val_loss"),
        "test_acc": num("metrics.test_acc"),
        "test_loss": num("metrics.test_loss"),  # nats per example: bits per character / ln 2 on text
        "train_acc": num("metrics.train_acc"),
        "prep_steps": num("metrics.prep_steps"),
        "theta0_test_acc": num("metrics.theta0_test_acc"),  # the member at its offset b (NaN: logged before)
        "principal_dims": num("metrics.principal_dims"),  # lottery subspaces: directions from the trajectory
        "run_id": get("run_id"),
        "failure_reason": get("tags.failure_reason") if isinstance(get("tags.failure_reason"), str) else None,
    }


def _isnan(v) -> bool:
    try:
        return math.isnan(float(v))
    except (TypeError, ValueError):
        return False


def finished_members(experiment: str, hashes: set[str], tracking_uri: str | None = None) -> dict[str, dict]:
    """config_hash -> record of the latest FINISHED member run with that hash in `experiment`."""
    import mlflow

    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None or not hashes:
        return {}
    df = mlflow.search_runs(experiment_ids=[exp.experiment_id], max_results=100_000,
                            filter_string="attributes.status = 'FINISHED' and params.config_hash != ''")
    out: dict[str, dict] = {}
    for _, row in (df.sort_values("start_time").iterrows() if not df.empty else []):
        rec = record_from_row(row)
        if rec is not None and rec["config_hash"] in hashes:
            out[rec["config_hash"]] = rec
    return out
