"""`trading-signals doctor`: is everything a run needs there, each said in one line with the fix.

The checks run side by side, all within one timeout, so a service that hangs is reported as down
within seconds instead of holding the others up: the stores, the spool, the kill switch, the
Dagster runs and their pool slots, the calendar, and (trading_assets/doctor_services.py) MLflow,
the IB gateway and the LLM provider. ``run_checks(..., services=services_used(...))`` is the
pre-flight of a run: only what the configuration uses.
"""

from __future__ import annotations

import datetime as dt
import importlib
import threading
import time
from collections.abc import Callable, Collection
from typing import Any

import dagster as dg

from io_managers.resilience import first_line
from trading_assets.calendar import is_trading_day, latest_completed_session
from trading_assets.doctor_services import (
    Finding,
    gateway_check,
    gateway_used,
    llm_check,
    llm_used,
    mlflow_check,
)
from trading_assets.run_recovery import inspect_runs

__all__ = ["SERVICES", "Finding", "run_checks", "services_used"]

# Overwritten on every check, never deleted: the object store keeps no delete (an audit trail).
PROBE_KEY = "_doctor/probe.txt"
CHECK_SECONDS = 5.0
# In the order they are printed.
SERVICES = (
    "database", "objects", "spool", "kill switch", "runs", "calendar", "mlflow", "gateway", "llm"
)
# Client libraries a check uses, imported lazily by the resources (not when the code location
# loads): imported here before the deadline starts, so that a second of importing on a busy
# machine is not reported as a service that did not answer.
_LIBRARIES = {
    "objects": ("boto3",),
    "mlflow": ("mlflow",),
    "gateway": ("ib_async",),
    "llm": ("openai", "anthropic"),
    "database": ("alembic",),
}


def _import_libraries(names: Collection[str]) -> None:
    for name in names:
        for module in _LIBRARIES.get(name, ()):
            try:
                importlib.import_module(module)
            except ImportError:
                continue  # the check itself says what is missing


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


def services_used(resolved: dict[str, Any]) -> set[str]:
    """The services of ``SERVICES`` that the configuration in ``resolved`` (every resource of
    resources_from_environment, resolved) calls: the gateway and the LLM API only when used."""
    used = set(SERVICES) - {"gateway", "llm"}
    if gateway_used(resolved["broker"], resolved["market_source"]):
        used.add("gateway")
    if llm_used(resolved["llm"]):
        used.add("llm")
    return used


def _checks(
    resources: dict[str, Any], instance: dg.DagsterInstance, moment: dt.datetime, budget: float
) -> dict[str, Callable[[], Finding]]:
    r = resources
    return {
        "database": lambda: _database(r["artifact_db"]),
        "objects": lambda: _object_store(r["object_store"]),
        "spool": lambda: _spool(r["spool"]),
        "kill switch": lambda: _kill_switch(r["policy"]),
        "runs": lambda: _runs(instance),
        "calendar": lambda: _calendar(moment),
        "mlflow": lambda: mlflow_check(r["mlflow"], budget),
        "gateway": lambda: gateway_check(
            r["broker"], r["market_source"], r["watchlist"], moment, budget
        ),
        "llm": lambda: llm_check(r["llm"], budget),
    }


def _start(name: str, check: Callable[[], Finding]) -> tuple[threading.Thread, list[Any]]:
    """Run ``check`` in a daemon thread; its Finding (or exception) lands in the list."""
    box: list[Any] = []

    def target() -> None:
        try:
            box.append(check())
        except Exception as exc:  # handed to the caller, which reports it as the finding
            box.append(exc)

    thread = threading.Thread(target=target, name=f"doctor-{name}", daemon=True)
    thread.start()
    return thread, box


def run_checks(
    resources: dict[str, Any],
    instance: dg.DagsterInstance,
    *,
    now: dt.datetime | None = None,
    timeout: float = CHECK_SECONDS,
    services: Collection[str] | None = None,
) -> list[Finding]:
    """The checks of ``services`` (default: all of ``SERVICES``) in parallel, all answered within
    ``timeout`` seconds, in the order of ``SERVICES``."""
    unknown = set(services or ()) - set(SERVICES)
    if unknown:
        raise ValueError(f"no check for {', '.join(sorted(unknown))}: use {', '.join(SERVICES)}")
    moment = now or dt.datetime.now(dt.UTC)
    every = _checks(resources, instance, moment, timeout)
    checks = [(name, every[name]) for name in SERVICES if services is None or name in services]
    # Daemon threads: a check that hangs past the deadline is reported and left behind, and
    # the process still exits (a thread pool's workers would be joined at exit).
    _import_libraries([name for name, _ in checks])
    running = [(name, _start(name, check)) for name, check in checks]
    # One deadline for all: waiting for each in turn must not add their timeouts up.
    deadline = time.monotonic() + timeout
    findings = []
    for name, (thread, box) in running:
        thread.join(max(deadline - time.monotonic(), 0))
        if not box:
            findings.append(Finding(name, False, f"no answer within {timeout:g} s"))
        elif isinstance(box[0], Exception):  # reported, not raised: the point is to see all
            findings.append(Finding(name, False, f"{type(box[0]).__name__}: {first_line(box[0])}"))
        else:
            findings.append(box[0])
    return findings
