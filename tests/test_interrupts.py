"""Ctrl-C / SIGTERM wait for the store call in progress; a failing store is one clear error."""
import signal

import pytest

from benchmark.runner import interrupts, tracking


@pytest.fixture(autouse=True)
def handlers():
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    interrupts.install()
    yield
    for s, h in saved.items():
        signal.signal(s, h)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_outside_a_deferred_block_interrupts_at_once(sig):
    done = []
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(sig)
        done.append("after")
    assert done == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_inside_a_deferred_block_waits_for_its_end(sig):
    done = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts.deferred():
            signal.raise_signal(sig)
            done.append("rest of the block")
            with interrupts.deferred():  # nested blocks: only the outermost end raises
                done.append("inner")
            done.append("after inner")
        done.append("after the block")
    assert done == ["rest of the block", "inner", "after inner"]
    # The pending interrupt was consumed: the next block runs clean.
    with interrupts.deferred():
        done.append("clean")
    assert done[-1] == "clean"


def test_a_second_signal_inside_the_block_raises_at_once():
    done = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts.deferred():
            signal.raise_signal(signal.SIGINT)
            done.append("first waited")
            signal.raise_signal(signal.SIGINT)
            done.append("never")
    assert done == ["first waited"]
    with interrupts.deferred():  # no stale pending interrupt afterwards
        done.append("clean")
    assert done[-1] == "clean"


class FakeClient:
    """Stands in for MlflowClient: a write that a signal arrives in the middle of, and failing stores."""

    def __init__(self):
        self.writes = []
        self.tracking_uri = "sqlite:///x.db"

    def log(self, value):
        signal.raise_signal(signal.SIGTERM)
        self.writes.append(value)
        return value * 2

    def disk_full(self):
        raise OSError(28, "No space left on device")

    def database_full(self):
        import sqlite3

        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE

        try:
            raise sqlite3.OperationalError("database or disk is full")
        except sqlite3.OperationalError as e:  # how MLflow's SQL store wraps a database error
            raise MlflowException("(raised as a result of Query-invoked autoflush; ...)\n(sqlite3...)",
                                  error_code=TEMPORARILY_UNAVAILABLE) from e

    def no_such_run(self):
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

        raise MlflowException("Run 'x' not found", error_code=RESOURCE_DOES_NOT_EXIST)


def test_store_client_finishes_the_call_then_interrupts():
    fake = FakeClient()
    client = tracking.Client(fake, fake.tracking_uri)
    assert client.tracking_uri == "sqlite:///x.db"  # attributes pass through
    with pytest.raises(KeyboardInterrupt):
        client.log(3)
    assert fake.writes == [3]
    fake.log = lambda value: value * 2  # a call with no signal returns its value
    assert client.log(4) == 8


def test_store_client_turns_storage_failures_into_one_line_and_lets_answers_through():
    from mlflow.exceptions import MlflowException

    client = tracking.Client(FakeClient(), "sqlite:///x.db")
    with pytest.raises(tracking.StoreFailure, match=r"^the tracking store 'sqlite:///x.db' failed in disk_full: "
                                                    r"\[Errno 28\] No space left on device$"):
        client.disk_full()
    # The driver's own words, not MLflow's first line about autoflush.
    with pytest.raises(tracking.StoreFailure, match=r"failed in database_full: database or disk is full$"):
        client.database_full()
    with pytest.raises(MlflowException, match="not found"):  # an answer, not a failing store
        client.no_such_run()
