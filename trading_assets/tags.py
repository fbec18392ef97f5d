"""Run tags the project sets and reads: a leaf module, so any layer may import it."""

from __future__ import annotations

from collections.abc import Mapping

# Every run of `trading-signals backfill`; a backfill never reaches a broker.
BACKFILL_TAG = "trading-signals/backfill"
# Dagster's own tag on the runs of a backfill launched from the UI or the daemon.
UI_BACKFILL_TAG = "dagster/backfill"
# Set by the command line once its pre-flight passed: the first step does not check again.
PREFLIGHT_TAG = "trading-signals/preflight"
# Dagster's own tags on a run that covers a range of partitions (a backfill's ranged run).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def backfill_tag(tags: Mapping[str, str]) -> str | None:
    """The tag marking a run as part of a backfill (UI or command line), as 'key=value'."""
    for key in (UI_BACKFILL_TAG, BACKFILL_TAG):
        if key in tags:
            return f"{key}={tags[key]}"
    return None
