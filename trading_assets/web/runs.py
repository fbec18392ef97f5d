"""Run status and times from the Dagster instance, when it can be read ("unknown" otherwise).

The instance is opened, used and disposed on one worker thread of its own: its SQLite storage
keeps connections that must not cross threads, and a lookup that hangs (a PostgreSQL instance
that stopped answering) is abandoned after a timeout instead of holding up the page.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

import dagster as dg

from io_managers.resilience import first_line

UNKNOWN = "unknown"
LOOKUP_TIMEOUT_SECONDS = 3.0
_LOG = logging.getLogger("trading_signals.web")

InstanceFactory = Callable[[], dg.DagsterInstance]


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    status: str = UNKNOWN
    job: str | None = None
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    note: str = ""  # why the status is unknown


def _time(timestamp: float | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC) if timestamp else None


class DagsterRuns:
    """Looks runs up in the instance ``factory`` opens (once); ``factory`` None: no instance."""

    def __init__(
        self, factory: InstanceFactory | None, timeout_seconds: float = LOOKUP_TIMEOUT_SECONDS
    ) -> None:
        self._factory = factory
        self._timeout = timeout_seconds
        self._instance: dg.DagsterInstance | None = None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dagster-runs")

    def _dispose(self) -> None:
        if self._instance is not None:
            self._instance.dispose()
            self._instance = None

    def close(self) -> None:
        try:
            self._worker.submit(self._dispose).result(timeout=self._timeout)
        except FutureTimeout:
            _LOG.warning("the Dagster instance did not close within %g s", self._timeout)
        finally:
            self._worker.shutdown(wait=False)

    def _records(self, run_ids: list[str]) -> dict[str, RunInfo]:
        if self._instance is None:
            assert self._factory is not None
            self._instance = self._factory()
        records = self._instance.get_run_records(
            dg.RunsFilter(run_ids=run_ids), limit=len(run_ids)
        )
        return {
            r.dagster_run.run_id: RunInfo(
                run_id=r.dagster_run.run_id,
                status=r.dagster_run.status.value,
                job=r.dagster_run.job_name,
                started_at=_time(r.start_time) or r.create_timestamp.astimezone(dt.UTC),
                ended_at=_time(r.end_time),
            )
            for r in records
        }

    def lookup(self, run_ids: Sequence[str]) -> dict[str, RunInfo]:
        """run id -> what the instance says; a run it does not know, or no instance: unknown."""
        wanted = sorted({r for r in run_ids if r})
        if not wanted:
            return {}
        note = ""
        found: dict[str, RunInfo] = {}
        if self._factory is None:
            note = "no Dagster instance (DAGSTER_HOME is not set)"
        else:
            try:
                found = self._worker.submit(self._records, wanted).result(timeout=self._timeout)
            except FutureTimeout:
                note = f"the Dagster instance did not answer within {self._timeout:g} s"
                _LOG.warning("run status unknown: %s", note)
            except Exception as exc:
                # Pages still render without run status; the reason is logged and shown.
                note = (
                    f"the Dagster instance cannot be read ({type(exc).__name__}: "
                    f"{first_line(exc)})"
                )
                _LOG.warning("run status unknown: %s", note)
        missing = note or "the Dagster instance has no such run"
        return {r: found.get(r) or RunInfo(run_id=r, note=missing) for r in wanted}
