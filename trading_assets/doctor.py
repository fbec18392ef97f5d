"""`trading-signals doctor`: is everything a run needs there, each said in one line with the fix.

The checks run side by side, each bounded by a timeout, so a service that hangs is reported as
down within seconds instead of holding the others up. This first version covers the stores, the
spool, the kill switch, the Dagster runs and their pool slots, and the calendar; the IB gateway,
MLflow and the LLM provider are still found by the run itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import dagster as dg

from io_managers.resilience import first_line
from trading_assets.calendar import is_trading_day, latest_completed_session
from trading_assets.run_recovery import inspect_runs

# Overwritten on every check, never deleted: the object store keeps no delete (an audit trail).
PROBE_KEY = "_doctor/probe.txt"
CHECK_SECONDS = 5.0


@dataclass(frozen=True)
class Finding:
    service: str
    ok: bool
    detail: str

    def line(self, width: int = 12) -> str:
        return f"{'OK' if self.ok else 'PROBLEM':<8} {self.service:<{width}} {self.detail}"


def _database(db: Any) -> Finding:
    from sql.engine import is_sqlite
    from sql.migrate import current_revision, head_revision

    where = db.masked_url()
    try:
        db.ping()
    except Exception as exc:
        return Finding(
            "database", False,
            f"cannot reach {where} ({first_line(exc)}): check DATABASE_URL and that the server "
            "is running",
        )
    current, head = current_revision(db.url), head_revision()
    if current == head:
        return Finding("database", True, f"{where}, schema {head}")
    if current is None and db.auto_migrate_sqlite and is_sqlite(db.url):
        return Finding("database", True, f"{where}, empty: the schema is created on first use")
    return Finding(
        "database", False,
        f"{where} is at schema {current or 'none'}, the code needs {head}: run "
        "`trading-signals db upgrade`",
    )


def _object_store(store: Any) -> Finding:
    stamp = dt.datetime.now(dt.UTC).isoformat().encode()
    uri = store.put(PROBE_KEY, stamp, "text/plain")
    if store.get(uri) != stamp:
        return Finding(
            "objects", False, f"{store.describe()}: the probe object read back different bytes"
        )
    return Finding("objects", True, f"{store.describe()}: writable (probe {PROBE_KEY})")


def _spool(spool: Any) -> Finding:
    waiting = spool.count()
    if waiting:
        return Finding(
            "spool", False,
            f"{waiting} artifact(s) wait in {spool.describe()}: run `trading-signals reconcile` "
            "once the stores answer",
        )
    return Finding("spool", True, f"{spool.describe()}: empty")


def _kill_switch(policy: Any) -> Finding:
    reason = policy.kill_switch_reason()
    if reason:
        return Finding("kill switch", False, f"ON: no order goes out ({reason})")
    return Finding("kill switch", True, "off")


def _runs(instance: dg.DagsterInstance) -> Finding:
    report = inspect_runs(instance)
    dead = [r for r in report.runs if r.reapable]
    if dead or report.stale:
        names = ", ".join(
            [f"{r.describe()} holding {', '.join(s.pool for s in r.slots) or 'no slot'}"
             for r in dead]
            + [f"ended run {s.run_id} still holding {s.slot.pool}" for s in report.stale]
        )
        return Finding(
            "runs", False,
            f"{names}: `trading-signals runs --reap` marks them failed and frees the slots",
        )
    held = [f"{r.run_id[:8]} holds {s.pool}" for r in report.runs for s in r.slots]
    detail = f"{len(report.runs)} in progress" + (f" ({'; '.join(held)})" if held else "")
    return Finding("runs", True, detail)


def _calendar(now: dt.datetime) -> Finding:
    today = now.astimezone(dt.UTC).date()
    latest = latest_completed_session(now)
    session = "a session" if is_trading_day(today) else "not a session"
    return Finding("calendar", True, f"today {today} is {session}; latest closed {latest}")


def run_checks(
    resources: dict[str, Any],
    instance: dg.DagsterInstance,
    *,
    now: dt.datetime | None = None,
    timeout: float = CHECK_SECONDS,
) -> list[Finding]:
    """Every check, in parallel, each within ``timeout`` seconds; in a fixed order."""
    moment = now or dt.datetime.now(dt.UTC)
    checks: list[tuple[str, Callable[[], Finding]]] = [
        ("database", lambda: _database(resources["artifact_db"])),
        ("objects", lambda: _object_store(resources["object_store"])),
        ("spool", lambda: _spool(resources["spool"])),
        ("kill switch", lambda: _kill_switch(resources["policy"])),
        ("runs", lambda: _runs(instance)),
        ("calendar", lambda: _calendar(moment)),
    ]
    pool = ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="doctor")
    futures = [(name, pool.submit(check)) for name, check in checks]
    findings = []
    for name, future in futures:
        try:
            findings.append(future.result(timeout=timeout))
        except FutureTimeout:
            findings.append(Finding(name, False, f"no answer within {timeout:g} s"))
        except Exception as exc:  # reported, not raised: the point is to see every service
            findings.append(Finding(name, False, f"{type(exc).__name__}: {first_line(exc)}"))
    # A hung check keeps its thread; the process exits without waiting for it.
    pool.shutdown(wait=False, cancel_futures=True)
    return findings
