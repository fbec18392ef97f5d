"""One process at a time initialising a local store: a lock file beside what it guards.

First runs started together in a fresh data folder each find the store missing and would all
create it (SQLite DDL and Alembic stamps are not safe to race). The lock is an OS file lock
(``filelock``): released when its holder exits, even by a crash, so a left-over ``.lock`` file
never blocks anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

# Longer than any first-time initialisation takes (MLflow's ~140 migrations on a busy machine).
DEFAULT_TIMEOUT_SECONDS = 300.0


class StoreInitialisationBusyError(RuntimeError):
    """Another process held a store's initialisation lock for longer than the timeout."""


def lock_path(target: Path) -> Path:
    return target.with_name(target.name + ".lock")


@contextmanager
def initialisation_lock(
    target: Path, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
) -> Iterator[None]:
    """Hold the lock guarding the creation of ``target`` (a file or folder) for the block."""
    path = lock_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path), timeout=timeout_seconds)
    try:
        lock.acquire()
    except Timeout:
        raise StoreInitialisationBusyError(
            f"another process has been initialising {target} for more than "
            f"{timeout_seconds:g} s (lock {path}): wait for it to finish and retry"
        ) from None
    try:
        yield
    finally:
        lock.release()
