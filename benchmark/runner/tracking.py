"""MLflow tracking: one parent run per invocation, one child run per (method, ratio, seed).

The store is opened (created, and the experiment made) before any training, so a bad URI fails
fast and parallel jobs never race on a fresh SQLite store's migrations.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from contextlib import contextmanager

from benchmark.core.errors import UserError
from benchmark.runner import interrupts

DEFAULT_URI = "sqlite:///mlflow.db"


def resolve_uri(uri: str | None) -> str:
    """`tracking.uri=` wins, then MLFLOW_TRACKING_URI, then MLflow's own default store."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


@contextmanager
def _fail_fast():
    """Probe a server without MLflow's minutes of retries."""
    saved = {k: os.environ.get(k) for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")}
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "10"
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _unusable(uri: str, e: Exception) -> UserError:
    reason = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
    return UserError(
        f"cannot use tracking store {uri!r}: {reason}. Accepted: a reachable MLflow server "
        f"(http://host:port) or a writable database/folder (e.g. {DEFAULT_URI}); "
        f"set tracking.uri= or MLFLOW_TRACKING_URI"
    )


class StoreFailure(UserError):
    """The store stopped taking requests mid-run: disk full, made read-only, locked, or gone."""


class Client:
    """An MlflowClient whose calls an interrupt never cuts in half (benchmark.runner.interrupts) and whose
    storage failures (OSError, a database error) become one StoreFailure naming the store and cause."""

    def __init__(self, client, uri: str):
        self._client, self.uri = client, uri

    def __getattr__(self, name):
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            from mlflow.exceptions import MlflowException  # mlflow loads only when something is logged (seconds)

            try:
                with interrupts.deferred():
                    return attr(*args, **kwargs)
            except OSError as e:
                raise StoreFailure(f"the tracking store {self.uri!r} failed in {name}: {e}") from None
            except MlflowException as e:
                if e.error_code != "TEMPORARILY_UNAVAILABLE":  # a database error; others are answers
                    raise
                root = e
                while root.__cause__ is not None:  # MlflowException <- SQLAlchemy's <- the driver's own words
                    root = root.__cause__
                reason = str(root).strip().splitlines()[0]
                raise StoreFailure(f"the tracking store {self.uri!r} failed in {name}: {reason}") from None

        return call


def connect(uri: str):
    """A client for an existing store, probed once (fails fast, creates nothing). Returns a Client."""
    from mlflow.tracking import MlflowClient  # mlflow loads only when something is logged (seconds)

    try:
        with _fail_fast():
            client = MlflowClient(uri)
            client.search_experiments(max_results=1)
    except Exception as e:  # MLflow raises many types here
        raise _unusable(uri, e) from None
    return Client(client, uri)


def open_store(uri: str, experiment: str):
    """Connect, create the store and the experiment if needed. Returns (Client, experiment_id)."""
    import mlflow  # mlflow loads only when something is logged (seconds)
    from mlflow.tracking import MlflowClient  # (as above)

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # not "Creating initial MLflow database tables..."
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)  # its tracebacks: Client says it in a line
    try:
        # Creating a SQLite store runs migrations: an interrupt in the middle would leave it half-built.
        with _fail_fast(), interrupts.deferred():
            mlflow.set_tracking_uri(uri)
            client = MlflowClient(uri)
            exp = client.get_experiment_by_name(experiment)
            exp_id = exp.experiment_id if exp is not None else client.create_experiment(experiment, tags=KIND)
            if exp is not None and exp.lifecycle_stage == "deleted":
                client.restore_experiment(exp_id)
            if exp is not None and exp.tags.get(KIND_TAG) != KIND[KIND_TAG]:  # created before the tag existed
                client.set_experiment_tag(exp_id, KIND_TAG, KIND[KIND_TAG])
    except Exception as e:  # MLflow raises many types here; the user needs the URI and the cause
        raise _unusable(uri, e) from None
    return Client(client, uri), exp_id


def start_run(client, exp_id: str, name: str, parent_id: str | None = None, tags: dict | None = None) -> str:
    tags = dict(tags or {})
    if parent_id:
        tags["mlflow.parentRunId"] = parent_id
    return client.create_run(exp_id, run_name=name, tags=tags).info.run_id


def log_values(client, run_id: str, params: dict | None = None, metrics: dict | None = None,
               curves: dict[str, list[float]] | None = None, tags: dict | None = None) -> None:
    """Everything for one run in as few requests as MLflow allows (log_batch caps 100 params, 1000 metrics).

    curves: key -> values at steps 1, 2, ... (per epoch)."""
    from mlflow.entities import Metric, Param, RunTag  # mlflow loads only when something is logged

    now = int(time.time() * 1000)
    p = [Param(k, str(v)) for k, v in (params or {}).items()]
    # A metric that also has a curve is its curve's last point: logging it twice would add a step 0.
    m = [Metric(k, float(v), now, 0) for k, v in (metrics or {}).items() if k not in (curves or {})]
    for key, values in (curves or {}).items():
        m += [Metric(key, float(v), now, step) for step, v in enumerate(values, start=1)]
    t = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
    for i in range(0, max(len(p), 1), 100):
        for j in range(0, max(len(m), 1), 1000):
            client.log_batch(run_id, metrics=m[j : j + 1000], params=p[i : i + 100] if j == 0 else [],
                             tags=t if (i, j) == (0, 0) else [])


def end_run(client, run_id: str, status: str = "FINISHED") -> None:
    client.set_terminated(run_id, status)


# MLflow 3 opens an experiment in its GenAI view unless it is tagged as model training.
KIND_TAG = "mlflow.experimentKind"
KIND = {KIND_TAG: "custom_model_development"}
UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default


def ui_links(uri: str, exp_id: str, run_id: str) -> tuple[str, str]:
    """(the experiment's runs in the "Model training" view, the run's leaderboard artifacts) in the UI."""
    base = uri.rstrip("/") if uri.startswith(("http://", "https://")) else UI
    view = "?workflowType=machine_learning"
    return (f"{base}/#/experiments/{exp_id}{view}",
            f"{base}/#/experiments/{exp_id}/runs/{run_id}/artifacts/leaderboard/leaderboard.md{view}")


def ui_command(uri: str) -> str:
    if uri.startswith(("http://", "https://")):
        return f"open {uri} in a browser"
    return f"mlflow ui --backend-store-uri {uri}"


PROVENANCE = "provenance.json"  # on the parent run: what `reproduce` replays


HOST_TAG, PID_TAG, KILLED_TAG = "dofbench.host", "dofbench.pid", "dofbench.killed_reason"


def _alive(tags: dict) -> bool:
    """Whether the invocation that opened a parent run with these tags still runs (only knowable on its host)."""
    if tags.get(HOST_TAG) != socket.gethostname() or not tags.get(PID_TAG, "").isdigit():
        return False
    pid = int(tags[PID_TAG])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


class Recorder:
    """One invocation's runs in the store: its parent, and its members, which exist (RUNNING) while they
    train so that an interrupt can mark them KILLED, then end FINISHED or FAILED. The parent's
    provenance.json says which members trained together and which seeds were prepared together."""

    def __init__(self, client: Client, exp_id: str):
        self.client, self.exp_id = client, exp_id
        self.parent: str | None = None
        self.running: dict = {}  # cell -> child run id, created when its population starts
        self.run_of: dict = {}  # cell -> child run id, once logged
        self.logged: set = set()  # cells whose child run is closed in the store
        self.provenance: dict = {"populations": [], "prep_batches": []}

    def open(self, name: str, parent_id: str | None, tags: dict, params: dict, metrics: dict, config: str) -> str:
        tags = {**tags, HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}  # who is alive: see abandoned()
        with interrupts.deferred():  # an interrupt here lands after `parent` is known
            self.parent = start_run(self.client, self.exp_id, name, parent_id=parent_id, tags=tags)
        log_values(self.client, self.parent, params=params, metrics=metrics)
        self.client.log_text(self.parent, config, "config.json")
        return self.parent

    def start(self, cells: list, params_of) -> None:
        """A population's members, created RUNNING with their params (params_of(cell) -> dict)."""
        index = len(self.provenance["populations"])
        self.provenance["populations"].append([c.name for c in cells])
        for c in cells:
            with interrupts.deferred():  # a member never exists in the store without its params
                self.running[c] = start_run(self.client, self.exp_id, c.name, parent_id=self.parent,
                                            tags={"dofbench.population": str(index)})
                log_values(self.client, self.running[c], params=params_of(c))

    def finish(self, cell, status: str, metrics: dict, curves: dict, tags: dict | None) -> None:
        child = self.run_of[cell] = self.running.pop(cell)
        log_values(self.client, child, None, metrics, curves, tags)
        end_run(self.client, child, status)
        self.logged.add(cell)

    def kill_running(self) -> None:
        """Members in flight, including one an interrupt caught between its creation and our bookkeeping."""
        with interrupts.deferred():  # a second Ctrl-C waits for this bookkeeping (a third does not)
            stray = self.client.search_runs(
                [self.exp_id], f"tags.mlflow.parentRunId = '{self.parent}' and attributes.status = 'RUNNING'")
            for child in set(self.running.values()) | {r.info.run_id for r in stray}:
                end_run(self.client, child, "KILLED")

    def abandoned(self, hashes: set[str]) -> list[tuple[str, str]]:
        """Mark KILLED what an earlier invocation of this config left RUNNING and is no longer alive to end
        (SIGKILL, the OOM killer, a power cut cannot be caught): its parent and every member still RUNNING
        under it, one killed before its params were logged included. An invocation counts as this config's
        where one of its RUNNING members has one of these config hashes; one still alive on this host (its
        pid) is left alone. Returns [(member run id, parent run id)] of the members marked."""
        running = self.client.search_runs([self.exp_id], "attributes.status = 'RUNNING'", max_results=50_000)
        children: dict[str, list] = {}
        for run in running:
            parent = run.data.tags.get("mlflow.parentRunId")
            if parent and parent != self.parent:
                children.setdefault(parent, []).append(run)
        marked = []
        for parent, runs in children.items():
            if not any(r.data.params.get("config_hash") in hashes for r in runs):
                continue
            if _alive(self.client.get_run(parent).data.tags):
                continue
            for r in runs:
                end_run(self.client, r.info.run_id, "KILLED")
                self.client.set_tag(r.info.run_id, KILLED_TAG, "left RUNNING by an invocation that did not end; "
                                                               f"trained again under {self.parent}")
                marked.append((r.info.run_id, parent))
            if self.client.get_run(parent).info.status == "RUNNING":
                end_run(self.client, parent, "KILLED")
                self.client.set_tag(parent, KILLED_TAG, "did not end (killed); its unfinished members were "
                                                        f"marked KILLED and trained again under {self.parent}")
        return marked

    def close(self, status: str) -> None:
        if self.parent is None:
            return
        with interrupts.deferred(), contextlib.suppress(StoreFailure):  # a store failure was reported already
            self.client.log_text(self.parent, json.dumps(self.provenance, indent=1), PROVENANCE)
            end_run(self.client, self.parent, status)
