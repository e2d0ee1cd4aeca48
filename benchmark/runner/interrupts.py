"""Ctrl-C and SIGTERM stop a run between store writes, never inside one.

A KeyboardInterrupt raised in the middle of an MLflow call can leave a SQLite transaction open in
MLflow's connection pool; the cleanup that marks members KILLED and closes the parent then fails
with "database is locked" (seen in CI). So, once `install()`ed, the handlers defer the interrupt
while a `deferred()` block runs and raise it as the block ends. A second signal inside the same
block raises at once: the user insisted, and may lose the bookkeeping of that one call.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

_depth = 0  # nesting of deferred() blocks
_pending = False  # a signal arrived inside one
_received = False  # any signal since install(): how a stopped sweep knows it was KILLED, not FAILED


def install() -> None:
    """Route SIGINT and SIGTERM through the deferring handler (signals are a main-thread affair)."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _handler)


def received() -> bool:
    """Whether SIGINT or SIGTERM arrived since install()."""
    return _received


def _handler(signum, frame) -> None:
    global _pending, _received
    _received = True
    if _depth and not _pending:
        _pending = True
        return
    _pending = False
    raise KeyboardInterrupt


@contextmanager
def deferred():
    """A block an interrupt never cuts in half: a signal inside it raises KeyboardInterrupt at its end."""
    global _depth, _pending
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _pending:
            _pending = False
            raise KeyboardInterrupt
