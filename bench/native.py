"""The native Dagster backfill's speed: `dagster dev` (webserver and daemon) on the repository's
workspace.yaml and dagster.yaml, the backfill launched through GraphQL as the UI launches one.

The harness is tests/native_backfill.py's (the tests check what this measures).
"""

from __future__ import annotations

from pathlib import Path

from bench.pipeline import sandbox, trading_days
from bench.stats import Figure
from tests.native_backfill import run_native_backfill

SUCCEEDED = ("COMPLETED", "COMPLETED_SUCCESS")


def native_backfill_figure(root: Path, symbols: int, days: int, bare_rate: float) -> Figure:
    """Partitions per minute from the launch to the end of the backfill's last run, for
    ``symbols`` x ``days`` on the offline defaults (synthetic bars, offline analyst, simulator);
    ``bare_rate``: the same work as plain function calls, partitions per minute, same run."""
    chosen = trading_days(days)
    names = [f"BENCH{chr(ord('A') + i)}" for i in range(symbols)]
    partitions = symbols * days
    with sandbox(root, "native-backfill") as env:
        # Generous: one run per partition (before ranged runs) takes ~10 s each, two at a time.
        outcome = run_native_backfill(env, names, chosen, timeout=300.0 + 20.0 * partitions)
    if outcome.status not in SUCCEEDED or outcome.seconds_to_last_run_end is None:
        failed = [r.run_id for r in outcome.runs if r.status != "SUCCESS"]
        raise RuntimeError(
            f"the native backfill {outcome.backfill_id} ended {outcome.status} "
            f"({outcome.error or 'no error'}; runs not successful: {failed or 'none'})"
        )
    seconds = outcome.seconds_to_last_run_end
    rate = partitions / seconds * 60
    first = outcome.seconds_to_first_run_start or 0.0
    note = (
        f"{partitions} partitions in {len(outcome.runs)} run(s); launch -> first run start "
        f"{first:.0f} s (the backfill daemon looks for new backfills every 30 s), -> last run "
        f"end {seconds:.1f} s, -> {outcome.status} {outcome.seconds_to_status:.1f} s (the "
        "daemon's next look)"
    )
    return Figure(
        f"native Dagster backfill {symbols} symbols x {days} trading days, offline "
        "(dagster dev, launched through GraphQL)",
        rate,
        "partitions/min",
        "the bare functions of one partition, called directly",
        bare_rate,
        ">= 60 partitions/min",
        rate >= 60,
        note,
    )
