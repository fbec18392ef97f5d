"""Backfills from the command line: many symbol-days, in worker processes, with progress.

Each symbol's days run in date order in one worker, as ranged runs of up to ``DAYS_PER_RUN``
days (the same kind of run a Dagster UI backfill launches: trading_assets/ranged.py), so the paper
simulator sees its history in sequence; different symbols run side by side. Every run carries the
`trading-signals/backfill` tag, and a backfill never reaches a broker (the order asset records it
as not traded there).
"""

from __future__ import annotations

import datetime as dt
import gc
import multiprocessing
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from queue import Empty, Queue

import dagster as dg

from trading_assets.calendar import sessions_between
from trading_assets.run_report import first_failure, quiet_run_config
from trading_assets.tags import BACKFILL_TAG, PREFLIGHT_TAG

# How long the other workers wait for the first partition to create the stores' schemas; past it
# they start anyway (the first worker died, and its error is what the backfill reports).
FIRST_PARTITION_WAIT_SECONDS = 300.0
# Days of one symbol in one run: a run keeps its values in memory until it ends (about 0.3 MB a
# day: bars and two PNGs), and progress is reported as each run ends.
DAYS_PER_RUN = 60


@dataclass(frozen=True)
class PartitionResult:
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


def freeze_loaded_heap(*, collect: bool = False) -> None:
    """Leave what is loaded so far (libraries, definitions, caches) out of the cyclic GC's scans.

    A loaded code location is about half a million long-lived objects, and every full collection
    walked all of them: 0.3-0.4 s each, several per run. Frozen, a collection only walks what was
    allocated since. ``collect`` first drops the garbage there is (a full collection, once).
    """
    if collect:
        gc.collect()
    gc.freeze()


def _run_symbol(
    symbol: str,
    days: list[dt.date],
    backfill_id: str,
    report: Callable[[PartitionResult], None],
    first_done: threading.Event | None = None,
    wait_for: threading.Event | None = None,
) -> None:
    """The symbol's days in order, as ranged in-process runs; ``report`` for each day.

    ``first_done`` is set once the first run has ended; until ``wait_for`` is set, no run
    starts (both are for worker processes: see ``run_backfill``).
    """
    from trading_assets.definitions import load_job
    from trading_assets.ranged import range_tags
    from trading_assets.run_recovery import process_tags

    job = load_job()
    freeze_loaded_heap()
    if wait_for is not None:
        wait_for.wait(FIRST_PARTITION_WAIT_SECONDS)
    with dg.DagsterInstance.get() as instance:
        for n, chunk in enumerate(chunks(days, first_alone=first_done is not None)):
            try:
                result = job.execute_in_process(
                    instance=instance,
                    tags={
                        **range_tags(symbol, chunk[0], chunk[-1]),
                        BACKFILL_TAG: backfill_id,
                        PREFLIGHT_TAG: "passed",
                        # The worker's pid: a killed worker's run is reaped, not left holding
                        # slots.
                        **process_tags(),
                    },
                    raise_on_error=False,
                    run_config=quiet_run_config(),
                )
            finally:
                if n == 0 and first_done is not None:
                    first_done.set()
            if n == 0:
                # What the first run loaded (MLflow, fonts, store engines) stays for every day.
                freeze_loaded_heap(collect=True)
            for outcome in _outcomes(symbol, chunk, result):
                report(outcome)


def chunks(days: list[dt.date], *, first_alone: bool = False) -> list[list[dt.date]]:
    """The ranged runs over ``days``, up to ``DAYS_PER_RUN`` days each, in date order.

    With ``first_alone`` the first day is a run of its own: it creates a new data folder's schemas
    while the other workers wait for it, so they wait for one day's run, not sixty days'.
    """
    head, rest = (days[:1], days[1:]) if first_alone else ([], days)
    runs = [head] if head else []
    return runs + [rest[i:i + DAYS_PER_RUN] for i in range(0, len(rest), DAYS_PER_RUN)]


def _worker(
    symbol: str,
    days: list[dt.date],
    backfill_id: str,
    queue: Queue,
    stores_ready: threading.Event,
    first: bool,
) -> None:
    if first:
        _run_symbol(symbol, days, backfill_id, queue.put, first_done=stores_ready)
    else:
        _run_symbol(symbol, days, backfill_id, queue.put, wait_for=stores_ready)


def _outcomes(
    symbol: str, days: list[dt.date], result: dg.ExecuteInProcessResult
) -> list[PartitionResult]:
    """One result per day of a ranged run (a failed run fails each of its days, with its first
    failure: a blocking check that fails on one day stops the run's later steps for all)."""
    if not result.success:
        why = first_failure(result)
        return [PartitionResult(symbol, day, result.run_id, False, why) for day in days]
    from trading_assets.partitions import partition_key_for

    signals = result.output_for_node("trading_signal")
    decisions = result.output_for_node("order")
    outcomes = []
    for day in days:
        key = str(partition_key_for(symbol, day))
        signal, decision = signals[key], decisions[key]
        placed = "order placed" if decision.placed else f"no order ({decision.reason})"
        outcomes.append(PartitionResult(
            symbol, day, result.run_id, True,
            f"{signal.action.value} {signal.confidence_score:g}; {placed}",
        ))
    return outcomes


def run_backfill(
    work: list[tuple[str, list[dt.date]]],
    backfill_id: str,
    workers: int,
    on_progress: Callable[[int, int, PartitionResult], None],
) -> list[PartitionResult]:
    """Run every partition of ``work``; ``on_progress(done, total, outcome)`` after each."""
    total = sum(len(days) for _, days in work)
    done: list[PartitionResult] = []

    def record(outcome: PartitionResult) -> None:
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
        # The first partition creates the artifact and MLflow schemas of a new data folder; two
        # workers doing that at once collided (MLflow's SQLite migration fails in one of them).
        # The others load their code meanwhile and start their runs once it is done.
        stores_ready = manager.Event()
        futures = [
            pool.submit(_worker, symbol, days, backfill_id, queue, stores_ready, n == 0)
            for n, (symbol, days) in enumerate(work)
        ]
        while len(done) < total:
            try:
                record(queue.get(timeout=0.5))
            except Empty:
                # A worker that died reports nothing more: surface its error, don't wait forever.
                for future in futures:
                    if future.done():
                        if future.exception() is not None:
                            stores_ready.set()  # no first partition is coming: don't hold them
                        future.result()  # raises the worker's error
                if all(f.done() for f in futures) and queue.empty():
                    break
        for future in futures:
            future.result()
    if len(done) != total:
        raise RuntimeError(f"the backfill reported {len(done)} of {total} partitions")
    return done
