"""Runs whose process died: find them, mark them failed, free the pool slots they hold.

The CLI tags each in-process run with its process (pid, host, start time). A run on this host
whose process is gone, or whose pid now belongs to another process, is dead and may be reaped;
a live run never is. Runs the daemon launched carry no such tags: run monitoring fails those.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from dagster._core.errors import DagsterExecutionInterruptedError
from dagster._utils.interrupts import check_captured_interrupt

PID_TAG = "trading-signals/pid"
HOST_TAG = "trading-signals/host"
PROCESS_START_TAG = "trading-signals/process-start"

_IN_PROGRESS = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
_REAP_HINT = "`trading-signals runs --stuck --reap`"


def _process_start(pid: int) -> str | None:
    """``<boot id>:<start ticks>`` of a live, non-zombie process; None when there is none.

    Raises OSError where /proc does not exist (not Linux): the caller falls back to the pid.
    """
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parentheses: fields after the last ')'.
    rest = stat[stat.rindex(")") + 2 :].split()
    state, start_ticks = rest[0], rest[19]
    return None if state in ("Z", "X") else f"{boot}:{start_ticks}"


def process_tags() -> dict[str, str]:
    """The run tags that let a later command tell whether this process is still running."""
    tags = {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}
    with suppress(OSError):
        tags[PROCESS_START_TAG] = _process_start(os.getpid()) or ""
    return tags


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_state(tags: dict[str, str]) -> str:
    """``alive``, ``dead``, ``pid reused``, ``other host`` or ``untracked`` (no pid tag)."""
    raw_pid = tags.get(PID_TAG)
    if not raw_pid or not raw_pid.isdigit():
        return "untracked"
    if tags.get(HOST_TAG) != socket.gethostname():
        return "other host"
    pid = int(raw_pid)
    recorded = tags.get(PROCESS_START_TAG)
    try:
        now = _process_start(pid)
    except OSError:
        return "alive" if _pid_alive(pid) else "dead"
    if now is None:
        return "dead"
    if recorded and recorded != now:
        return "pid reused"
    return "alive"


REAPABLE = ("dead", "pid reused")


@dataclass(frozen=True)
class Slot:
    pool: str
    step_key: str


@dataclass(frozen=True)
class RunInProgress:
    run_id: str
    job_name: str
    status: str
    partition: str | None
    pid: str | None
    host: str | None
    process: str
    slots: tuple[Slot, ...]
    pending: tuple[Slot, ...]

    @property
    def reapable(self) -> bool:
        return self.process in REAPABLE

    def describe(self) -> str:
        where = f"pid {self.pid} on {self.host}" if self.pid else "no pid tag"
        return f"run {self.run_id} ({self.job_name} {self.partition or '-'}, {where}, " \
               f"process {self.process})"


@dataclass(frozen=True)
class StaleSlot:
    """A slot still claimed by a run that has finished, or that no longer exists."""

    run_id: str
    run_status: str
    slot: Slot


@dataclass
class RunsReport:
    runs: list[RunInProgress] = field(default_factory=list)
    stale: list[StaleSlot] = field(default_factory=list)
    reaped: list[str] = field(default_factory=list)
    freed_for: list[str] = field(default_factory=list)

    def holders(self, pool: str) -> list[RunInProgress]:
        return [r for r in self.runs if any(s.pool == pool for s in r.slots)]


_SlotsByRun = dict[str, list[Slot]]


def _pool_claims(instance: dg.DagsterInstance) -> tuple[_SlotsByRun, _SlotsByRun]:
    """(claimed, pending) slots by run id, over every pool."""
    storage = instance.event_log_storage
    claimed: dict[str, list[Slot]] = {}
    pending: dict[str, list[Slot]] = {}
    if not storage.supports_global_concurrency_limits:
        return claimed, pending
    for pool in sorted(storage.get_concurrency_keys()):
        info = storage.get_concurrency_info(pool)
        for slot in info.claimed_slots:
            claimed.setdefault(slot.run_id, []).append(Slot(pool, slot.step_key))
        for step in info.pending_steps:
            # An assigned pending step holds a slot its run has not picked up yet.
            target = claimed if step.assigned_timestamp is not None else pending
            target.setdefault(step.run_id, []).append(Slot(pool, step.step_key))
    return claimed, pending


def _entry(run: dg.DagsterRun, claimed: dict, pending: dict) -> RunInProgress:
    return RunInProgress(
        run_id=run.run_id,
        job_name=run.job_name,
        status=run.status.value,
        partition=run.tags.get("dagster/partition"),
        pid=run.tags.get(PID_TAG),
        host=run.tags.get(HOST_TAG),
        process=process_state(dict(run.tags)),
        slots=tuple(claimed.get(run.run_id, ())),
        pending=tuple(pending.get(run.run_id, ())),
    )


def inspect_runs(instance: dg.DagsterInstance) -> RunsReport:
    """Runs in progress with their process and slots, and slots of runs that have ended."""
    runs = {
        r.run_id: r
        for r in instance.get_runs(filters=dg.RunsFilter(statuses=_IN_PROGRESS))
        # A run created but never started is in progress only if a CLI process owns it.
        if r.status != dg.DagsterRunStatus.NOT_STARTED or PID_TAG in r.tags
    }
    claimed, pending = _pool_claims(instance)
    report = RunsReport()
    for run_id in sorted(set(claimed) | set(pending)):
        if run_id in runs:
            continue
        # Listed after the runs: a run that started since then is looked up again, not freed.
        run = instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            runs[run_id] = run
            continue
        status = run.status.value if run is not None else "deleted"
        report.stale.extend(StaleSlot(run_id, status, s) for s in claimed.get(run_id, ()))
        report.stale.extend(StaleSlot(run_id, status, s) for s in pending.get(run_id, ()))
    report.runs = [_entry(run, claimed, pending) for run in runs.values()]
    return report


def reap(instance: dg.DagsterInstance) -> RunsReport:
    """Mark in-progress runs whose process is dead failed and free their slots; free the slots
    of runs that have ended. Never touches a run whose process is alive or unknown."""
    report = inspect_runs(instance)
    storage = instance.event_log_storage
    for entry in report.runs:
        if not entry.reapable:
            continue
        run = instance.get_run_by_id(entry.run_id)
        if run is None or run.is_finished or process_state(dict(run.tags)) not in REAPABLE:
            continue
        instance.report_run_failed(
            run,
            message=(
                f"The process of this run (pid {entry.pid} on {entry.host}) is gone "
                f"({entry.process}); marked failed and its pool slots freed by trading-signals."
            ),
        )
        storage.free_concurrency_slots_for_run(run.run_id)
        report.reaped.append(run.run_id)
    for run_id in sorted({s.run_id for s in report.stale}):
        storage.free_concurrency_slots_for_run(run_id)
        report.freed_for.append(run_id)
    return report


def report_lines(report: RunsReport) -> list[str]:
    """What `trading-signals runs --stuck` prints."""
    lines = []
    if not report.runs:
        lines.append("no run in progress")
    for r in report.runs:
        held = ", ".join(f"{s.pool} ({s.step_key})" for s in r.slots) or "none"
        waits = ", ".join(f"{s.pool} ({s.step_key})" for s in r.pending)
        lines.append(
            f"{r.run_id}  {r.status:<10} {r.job_name} {r.partition or '-'}  "
            f"pid {r.pid or '-'} on {r.host or '-'}: {r.process}  slots held: {held}"
            + (f"  waiting for: {waits}" if waits else "")
        )
        if r.process == "untracked":
            lines.append("    (no pid tag: launched by the daemon; run monitoring fails it if "
                         "its worker dies)")
    for s in report.stale:
        lines.append(
            f"{s.run_id}  {s.run_status:<10} still holds {s.slot.pool} ({s.slot.step_key}) "
            "after it ended"
        )
    dead = [r for r in report.runs if r.reapable and r.run_id not in report.reaped]
    for run_id in report.reaped:
        lines.append(f"reaped {run_id}: marked failed, pool slots freed")
    for run_id in report.freed_for:
        lines.append(f"freed the pool slots of ended run {run_id}")
    if (dead or report.stale) and not (report.reaped or report.freed_for):
        lines.append(f"{len(dead)} dead run(s), {len(report.stale)} stale slot(s): "
                     f"{_REAP_HINT} marks them failed and frees their slots")
    return lines


# ------------------------------------------------------------------ bounded pool waits


class PoolWaitTimeout(Exception):
    """A run waited longer than the bound for a pool slot; the message names the holder."""


class RunInterrupted(Exception):
    """SIGINT or SIGTERM arrived while the run was waiting (Dagster defers them there)."""


def holder_message(instance: dg.DagsterInstance, pool: str, waited: float) -> str:
    report = inspect_runs(instance)
    holders = report.holders(pool)
    stale = [s for s in report.stale if s.slot.pool == pool]
    if holders:
        h = holders[0]
        step = next(s.step_key for s in h.slots if s.pool == pool)
        if h.process == "alive":
            fix = (f"let it finish, or stop it (kill {h.pid}: it fails the run and frees the "
                   "slot)")
        elif h.reapable:
            fix = f"its process is gone: {_REAP_HINT} frees it"
        else:
            fix = ("if it is stuck, terminate it in the Dagster UI (Runs), which frees its "
                   "slots")
        who = f"{h.describe()} holds it in step {step}; {fix}"
    elif stale:
        who = f"ended run {stale[0].run_id} still holds it; {_REAP_HINT} frees it"
    else:
        who = "no run holds it now (try again)"
    return (f"gave up after {waited:g} s waiting for a slot in pool {pool}: {who} "
            f"(`trading-signals runs --stuck` lists the holders; POOL_WAIT_SECONDS sets the wait)")


class _Fire(DagsterExecutionInterruptedError):
    """Raised in the main thread to end a run's wait; Dagster records the run as failed."""


@dataclass
class PoolWatch:
    """Ends a run that waits on a pool longer than ``bound`` seconds, or that got SIGINT/SIGTERM
    while waiting (Dagster's in-process executor defers signals until a step starts, and
    polls for a slot without end). Dead holders are reaped while waiting."""

    instance: dg.DagsterInstance
    run_id: str
    bound: float
    poll: float = 0.5
    reap_every: float = 5.0
    on_reaped: Callable[[RunsReport], None] = lambda report: None
    error: Exception | None = None

    def _pending_pool(self) -> str | None:
        _, pending = _pool_claims(self.instance)
        slots = pending.get(self.run_id)
        return slots[0].pool if slots else None

    def _watch(self, done: threading.Event, main_ident: int) -> None:
        first_wait: float | None = None
        last_reap = time.monotonic()
        signalled_since: float | None = None
        while not done.wait(self.poll):
            now = time.monotonic()
            if check_captured_interrupt():
                # Inside a step Dagster raises at once; a signal still pending after a second
                # means the run sits outside any step, waiting.
                signalled_since = signalled_since or now
                if now - signalled_since >= 1.0:
                    self.error = RunInterrupted("interrupted (SIGINT/SIGTERM) while the run "
                                                "waited; it is marked failed")
                    break
            else:
                signalled_since = None
            try:
                pool = self._pending_pool()
                if pool is None:
                    first_wait = None
                    continue
                first_wait = first_wait or now
                if now - last_reap >= self.reap_every:
                    last_reap = now
                    report = reap(self.instance)
                    if report.reaped or report.freed_for:
                        self.on_reaped(report)
                if now - first_wait >= self.bound:
                    self.error = PoolWaitTimeout(holder_message(self.instance, pool, self.bound))
                    break
            except Exception:  # noqa: BLE001 - a busy SQLite file: look again at the next poll
                continue
        if self.error is not None and not done.is_set():
            # Failed first, with the reason: the interrupted run then ends without a traceback.
            with suppress(Exception):
                run = self.instance.get_run_by_id(self.run_id)
                if run is not None and not run.is_finished:
                    self.instance.report_run_failed(run, message=str(self.error))
            signal.pthread_kill(main_ident, signal.SIGUSR1)

    @contextmanager
    def watching(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signals reach only the main thread: no bound here
            return
        done = threading.Event()

        def fire(_signo: int, _frame: object) -> None:
            if not done.is_set():
                raise _Fire(str(self.error))

        previous = signal.signal(signal.SIGUSR1, fire)
        watcher = threading.Thread(
            target=self._watch, args=(done, threading.main_thread().ident), daemon=True,
            name=f"pool-watch-{self.run_id[:8]}",
        )
        watcher.start()
        try:
            yield
        finally:
            done.set()
            watcher.join()
            signal.signal(signal.SIGUSR1, previous)
