"""Backfills from the command line: many symbol-days, in worker processes, with progress.

Each symbol's days run in date order in one worker, so the paper simulator sees its history in
sequence; different symbols run side by side. Every run carries the `trading-signals/backfill`
tag, and a backfill never reaches a broker (the order asset records it as not traded there).
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from queue import Empty, Queue

import dagster as dg

from trading_assets.calendar import sessions_between

BACKFILL_TAG = "trading-signals/backfill"
JOB_NAME = "trading_signals_job"


@dataclass(frozen=True)
class PartitionOutcome:
    symbol: str
    day: dt.date
    run_id: str
    success: bool
    summary: str


def plan(symbols: list[str], start: dt.date, end: dt.date) -> list[tuple[str, list[dt.date]]]:
    days = [d.date() for d in sessions_between(start, end)]
    return [(symbol, days) for symbol in symbols]


def new_backfill_id() -> str:
    return f"cli-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


def _run_symbol(
    symbol: str,
    days: list[dt.date],
    backfill_id: str,
    report: Callable[[PartitionOutcome], None],
) -> None:
    """The symbol's days in order, each as one in-process run; ``report`` after each."""
    from resources.environment import resources_from_environment, workflow_schedule
    from trading_assets.definitions import build_definitions
    from trading_assets.partitions import partition_key_for

    job = build_definitions(resources_from_environment(), cron=workflow_schedule()).resolve_job_def(
        JOB_NAME
    )
    with dg.DagsterInstance.get() as instance:
        for day in days:
            result = job.execute_in_process(
                partition_key=partition_key_for(symbol, day),
                instance=instance,
                tags={BACKFILL_TAG: backfill_id},
                raise_on_error=False,
                run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
            )
            report(_outcome(symbol, day, result))


def _worker(symbol: str, days: list[dt.date], backfill_id: str, queue: Queue) -> None:
    _run_symbol(symbol, days, backfill_id, queue.put)


def _outcome(symbol: str, day: dt.date, result: dg.ExecuteInProcessResult) -> PartitionOutcome:
    if not result.success:
        failed = [e.step_key for e in result.all_events if e.is_step_failure]
        return PartitionOutcome(
            symbol,
            day,
            result.run_id,
            False,
            f"failed at {', '.join(s or '?' for s in failed) or 'run'}",
        )
    signal = result.output_for_node("trading_signal")
    decision = result.output_for_node("order")
    placed = "order placed" if decision.placed else f"no order ({decision.reason})"
    return PartitionOutcome(
        symbol,
        day,
        result.run_id,
        True,
        f"{signal.action.value} {signal.confidence_score:g}; {placed}",
    )


def run_backfill(
    work: list[tuple[str, list[dt.date]]],
    backfill_id: str,
    workers: int,
    on_progress: Callable[[int, int, PartitionOutcome], None],
) -> list[PartitionOutcome]:
    """Run every partition of ``work``; ``on_progress(done, total, outcome)`` after each."""
    total = sum(len(days) for _, days in work)
    done: list[PartitionOutcome] = []

    def record(outcome: PartitionOutcome) -> None:
        done.append(outcome)
        on_progress(len(done), total, outcome)

    if workers <= 1 or len(work) <= 1:
        for symbol, days in work:
            _run_symbol(symbol, days, backfill_id, record)
        return done
    with (
        multiprocessing.Manager() as manager,
        ProcessPoolExecutor(max_workers=min(workers, len(work))) as pool,
    ):
        queue = manager.Queue()
        futures = [pool.submit(_worker, symbol, days, backfill_id, queue) for symbol, days in work]
        while len(done) < total:
            try:
                record(queue.get(timeout=0.5))
            except Empty:
                # A worker that died reports nothing more: surface its error, don't wait forever.
                for future in futures:
                    if future.done():
                        future.result()  # raises the worker's error
                if all(f.done() for f in futures) and queue.empty():
                    break
        for future in futures:
            future.result()
    if len(done) != total:
        raise RuntimeError(f"the backfill reported {len(done)} of {total} partitions")
    return done


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))
