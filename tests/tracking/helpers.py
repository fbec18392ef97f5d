"""Helpers for the MLflow tests: a seeded symbol-day and the mlflow_run step run alone."""

from __future__ import annotations

import dagster as dg

from io_managers.artifact_store import ArtifactStore
from tests.io_managers import examples
from tests.servers import free_port
from trading_assets.environment import resources_from_environment
from trading_assets.models import Timeframe
from trading_assets.partitions import partition_key_for
from trading_assets.tracking.record import TRACKED_ASSETS

SYMBOL = examples.SYMBOL
DAY = examples.DAY
PARTITION = partition_key_for(SYMBOL, DAY)
SEED_RUN_ID = "seed-run-0001"


def store_for(env: dict[str, str]) -> ArtifactStore:
    resources = resources_from_environment(env)
    return ArtifactStore(resources["artifact_db"], resources["object_store"])


def seed_partition(env: dict[str, str], run_id: str = SEED_RUN_ID) -> dict[str, int]:
    """Store one artifact of each of the seven assets, as a run of the graph would: asset -> id."""
    values = {
        "market_data": examples.market_data(),
        "daily_chart": examples.chart(),
        "weekly_chart": examples.chart().model_copy(
            update={"timeframe": Timeframe.WEEKLY, "png": examples.png(color="orange")}
        ),
        "llm_analysis": examples.llm(),
        "trading_signal": examples.signal(),
        "order": examples.order(),
        "portfolio": examples.portfolio(),
    }
    assert tuple(values) == TRACKED_ASSETS
    store = store_for(env)
    ids = {}
    for asset, value in values.items():
        record = store.write(
            value,
            asset_name=asset,
            symbol=SYMBOL,
            partition_key=str(PARTITION),
            partition_date=DAY,
            job_name="trading_signals_job",
            run_id=run_id,
            step_key=asset,
        )
        assert record.id is not None
        ids[asset] = record.id
    return ids


def materialize_tracking(
    env: dict[str, str], instance: dg.DagsterInstance
) -> dg.ExecuteInProcessResult:
    """Only the mlflow_run step, for the seeded partition: how a user re-runs it alone."""
    from trading_assets.tracking.assets import mlflow_run

    instance.add_dynamic_partitions("symbol", [SYMBOL])
    return dg.materialize(
        [mlflow_run],
        partition_key=PARTITION,
        resources=resources_from_environment(env),
        instance=instance,
        raise_on_error=False,
    )


def unreachable_url() -> str:
    """An http URL on a port nothing listens on (connection refused)."""
    return f"http://127.0.0.1:{free_port()}"
