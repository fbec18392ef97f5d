"""Timeouts and bounded retries (exponential backoff, jitter) for writes to the stores.

Every attempt runs under a wall-clock timeout: a database connection that hangs mid-statement
(a dead network path, a paused server) gives no error of its own. An attempt that timed out may
still finish later; writes are idempotent (object keys hold the content hash, rows a unique write
key), so the retry or the spool replay that follows cannot store anything twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import sqlalchemy.exc
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from resources.object_store import ObjectStoreError

T = TypeVar("T")


class Log(Protocol):
    def warning(self, msg: str) -> Any: ...


@dataclass(frozen=True)
class WritePolicy:
    """How hard a write tries before its artifact goes to the spool."""

    attempts: int = 4
    base_delay_seconds: float = 0.5
    max_delay_seconds: float = 8.0
    timeout_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"STORAGE_WRITE_ATTEMPTS must be at least 1, got {self.attempts}")
        if self.timeout_seconds <= 0:
            raise ValueError(
                f"STORAGE_WRITE_TIMEOUT_SECONDS must be positive, got {self.timeout_seconds}"
            )


class StoreTimeoutError(TimeoutError):
    """A store did not finish one request within the write timeout."""


def is_transient(exc: BaseException) -> bool:
    """A store that is down, unreachable, slow or refusing: worth a retry, then the spool.

    Anything else (a schema that is behind, a bad value, a bug) fails the asset at once.
    """
    if isinstance(exc, StoreTimeoutError | ObjectStoreError | ConnectionError):
        return True
    if isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
        return True
    if isinstance(exc, sqlalchemy.exc.TimeoutError):  # the connection pool
        return True
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return True
    # The local folder: a full disk, an unmounted volume, a permission change.
    return isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError)


def call_with_timeout(fn: Callable[[], T], seconds: float, what: str) -> T:
    """``fn()``, or StoreTimeoutError after ``seconds`` (the call is abandoned, not killed)."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # handed to the caller below, never dropped
            outcome["error"] = exc

    worker = threading.Thread(target=target, name=f"store-write: {what}", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise StoreTimeoutError(f"{what} did not finish within {seconds:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]


def with_retries(
    fn: Callable[[], T], *, what: str, where: str, policy: WritePolicy, log: Log | None
) -> T:
    """``fn()`` with a timeout per attempt and bounded, jittered exponential retries.

    ``what`` names the write and its context (asset, partition, run); ``where`` the target store
    (already free of secrets). Each retry is logged with both.
    """

    def before_sleep(state: RetryCallState) -> None:
        if log is None or state.outcome is None:
            return
        error = state.outcome.exception()
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            f"{what} -> {where}: attempt {state.attempt_number}/{policy.attempts} failed "
            f"({type(error).__name__}: {first_line(error)}); retrying in {wait:.1f} s"
        )

    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts),
        wait=wait_exponential_jitter(
            multiplier=policy.base_delay_seconds,
            max=policy.max_delay_seconds,
            jitter=policy.base_delay_seconds,
        ),
        retry=retry_if_exception(is_transient),
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(call_with_timeout, fn, policy.timeout_seconds, f"{what} -> {where}")


def first_line(error: BaseException | None) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "no message"
