"""A leaderboard published on an MLflow run: its files as artifacts, d*90 and D/d*90 as metrics."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from leaderboards.build import Leaderboard, build
from leaderboards.write import write


def publish(client, run_id: str, records: list[dict], dataset: str, model: str,
            folder: str = "leaderboard") -> Leaderboard:
    """Build the leaderboard of `records` (one run's members); log its files under `folder` and
    dstar90.<method>, compression90.<method>, bits90.<code>.<method> on run_id (client: an MlflowClient)."""
    from mlflow.entities import Metric

    lb = build(records, dataset, model)
    with tempfile.TemporaryDirectory() as tmp:
        write(lb, Path(tmp))
        client.log_artifacts(run_id, tmp, folder)
    metrics = {f"dstar90.{row.method}": row.threshold.d for row in lb.rows
               if row.threshold is not None and row.threshold.d is not None}
    metrics.update({f"compression90.{row.method}": row.compression for row in lb.rows if row.compression})
    metrics.update({f"bits90.{code}.{row.method}": row.threshold.d for code, rows in lb.bits.items() for row in rows
                    if row.threshold.d is not None})
    now = int(time.time() * 1000)
    if metrics:
        client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])
    return lb
