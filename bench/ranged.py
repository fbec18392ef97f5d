"""A backfill's ranged run in one warm process: what each partition costs when one run covers a
symbol's many days (trading_assets/ranged.py), beside the same work called directly."""

from __future__ import annotations

import gc
import time
from collections import Counter
from pathlib import Path

import dagster as dg

from bench.pipeline import JOB, sandbox, trading_days
from bench.stats import Figure
from trading_assets.backfill import freeze_loaded_heap
from trading_assets.definitions import build_definitions
from trading_assets.environment import resources_from_environment
from trading_assets.ranged import range_tags

SYMBOL = "BENCH"


def ranged_figure(root: Path, days: int, direct_seconds: float) -> Figure:
    """Seconds per partition of one ranged run over ``days`` days, warm; ``direct_seconds``: one
    partition's functions and artifact writes called directly (bench.pipeline, same run)."""
    chosen = trading_days(days + 2)
    warm, measured = chosen[:2], chosen[2:]
    with sandbox(root, "ranged") as env:
        job = build_definitions(resources_from_environment(env)).resolve_job_def(JOB)
        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            instance.add_dynamic_partitions("symbol", [SYMBOL])
            quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
            # Warm: imports, fonts, schema migrations, the MLflow store.
            assert job.execute_in_process(
                instance=instance, tags=range_tags(SYMBOL, warm[0], warm[-1]),
                run_config=quiet).success
            freeze_loaded_heap(collect=True)
            try:
                started = time.perf_counter()
                result = job.execute_in_process(
                    instance=instance, tags=range_tags(SYMBOL, measured[0], measured[-1]),
                    run_config=quiet)
                seconds = time.perf_counter() - started
            finally:
                gc.unfreeze()
            assert result.success, "the benchmark's ranged run failed"
            entries = instance.all_logs(result.run_id)
    counts = Counter(e.dagster_event_type for e in entries if e.is_dagster_event)
    per_partition = seconds / days
    ratio = per_partition / direct_seconds
    return Figure(
        f"ranged run, {days} days of one symbol in one run, per partition, warm "
        f"(Dagster/direct {ratio:.2f}x)",
        per_partition,
        "s",
        "one partition's functions and artifact writes called directly",
        direct_seconds,
        "<= 1.5x direct",
        ratio <= 1.5,
        f"{seconds:.1f} s for the run; {len(entries)} event-log entries "
        f"({counts[dg.DagsterEventType.ASSET_MATERIALIZATION]} materializations, "
        f"{counts[dg.DagsterEventType.ASSET_CHECK_EVALUATION]} check evaluations), "
        f"{len(entries) / days:.1f} per partition",
    )
