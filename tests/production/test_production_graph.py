"""The whole graph on the production stores: artifacts in PostgreSQL, objects in S3 (moto), and
the Dagster instance of docker/dagster.yaml on PostgreSQL."""

from __future__ import annotations

import hashlib

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.run_coordinator.queued_run_coordinator import QueuedRunCoordinator
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

from io_managers.artifact_store import ArtifactStore
from resources.s3_object_store import S3ObjectStore
from sql.engine import create_database_engine
from sql.migrate import UPGRADE_COMMAND
from tests.conftest import TRADING_DAY
from tests.servers import throwaway_postgres_database
from trading_assets.definitions import build_definitions
from trading_assets.environment import resources_from_environment
from trading_assets.partitions import partition_key_for

pytestmark = pytest.mark.integration

ASSETS = {
    "market_data": ("market_data", "application/vnd.apache.parquet"),
    "daily_chart": ("chart", "image/png"),
    "weekly_chart": ("chart", "image/png"),
    "llm_analysis": ("llm", "application/json"),
    "trading_signal": ("signal", "application/json"),
    "order": ("order", "application/json"),
    "portfolio": ("portfolio", "application/json"),
}


def _run(
    env: dict[str, str], instance: dg.DagsterInstance, symbol: str = "TSLA"
) -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions("symbol", [symbol])
    job = build_definitions(resources_from_environment(env)).resolve_job_def(
        "trading_signals_job"
    )
    return job.execute_in_process(
        partition_key=partition_key_for(symbol, TRADING_DAY), instance=instance,
        raise_on_error=False,
    )


def test_the_production_dagster_yaml_builds_an_instance_on_postgres(
    production_instance: dg.DagsterInstance,
) -> None:
    instance = production_instance
    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
    assert instance.run_monitoring_enabled and instance.run_retries_enabled
    assert instance.run_retries_max_retries == 1
    assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 4
    assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
    assert not instance.telemetry_enabled


def test_whole_graph_writes_rows_to_postgres_and_objects_to_s3(
    production_env: dict[str, str], production_instance: dg.DagsterInstance, bucket: str
) -> None:
    # The pools docker-compose's dagster-init sets: the graph must run within them.
    production_instance.event_log_storage.set_concurrency_slots("broker", 1)
    production_instance.event_log_storage.set_concurrency_slots("llm", 2)

    result = _run(production_env, production_instance)
    assert result.success

    resources = resources_from_environment(production_env)
    store = resources["object_store"]
    assert isinstance(store, S3ObjectStore) and store.bucket == bucket
    artifacts = ArtifactStore(resources["artifact_db"], store)
    rows = artifacts.database.query(execution_id=result.run_id)
    assert sorted((r.step_name, r.type) for r in rows) == sorted(
        (name, kind) for name, (kind, _) in ASSETS.items()
    )
    for row in rows:
        assert row.object_uri.startswith(f"s3://{bucket}/{row.step_name}/TSLA/2025-06-02/")
        data = artifacts.read_payload(row)
        assert len(data) == row.size_bytes
        assert hashlib.sha256(data).hexdigest() == row.content_hash
        assert store.content_type(row.object_uri) == ASSETS[row.step_name][1]
        assert row.partition_date == TRADING_DAY and row.workflow_id == "trading_signals_job"
    # Loading goes through the same stores: what the next asset would read.
    signal = artifacts.load_latest("trading_signal", partition_key_for("TSLA", TRADING_DAY))
    assert signal == result.output_for_node("trading_signal")

    # JSON columns are JSONB on PostgreSQL: queryable with its operators.
    engine = create_database_engine(production_env["DATABASE_URL"])
    try:
        with engine.connect() as connection:
            action = connection.execute(
                sa.text(
                    "SELECT signal_data ->> 'action' FROM artifacts "
                    "WHERE type = 'signal' AND execution_id = :run"
                ),
                {"run": result.run_id},
            ).scalar_one()
            kinds = connection.execute(
                sa.text(
                    "SELECT DISTINCT jsonb_typeof(artifact_metadata) FROM artifacts "
                    "WHERE execution_id = :run"
                ),
                {"run": result.run_id},
            ).scalars().all()
    finally:
        engine.dispose()
    assert action == signal.action.value and kinds == ["object"]

    # The run, its materializations and the pools' slots live in the PostgreSQL instance.
    instance = production_instance
    run = instance.get_run_by_id(result.run_id)
    assert run is not None and run.is_success
    materialized = instance.get_latest_materialization_event(dg.AssetKey("portfolio"))
    assert materialized is not None and materialized.run_id == result.run_id
    broker_pool = instance.event_log_storage.get_pool_limits()
    assert {p.name: p.limit for p in broker_pool} == {"broker": 1, "llm": 2}


def test_the_pipeline_refuses_an_unmigrated_database_naming_the_command(
    production_env: dict[str, str], production_instance: dg.DagsterInstance, bucket: str
) -> None:
    with throwaway_postgres_database() as empty_url:
        env = {**production_env, "DATABASE_URL": empty_url.replace("postgres@", "postgres:pw1@")}
        result = _run(env, production_instance)
    assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    assert [e.step_key for e in failures] == ["market_data"]
    message = str(failures[0].step_failure_data.error)
    assert f"`{UPGRADE_COMMAND}`" in message and "none (no tables yet)" in message
    assert "pw1" not in message and "postgres:***@" in message
    # Refused before writing: not even an object was stored.
    store = resources_from_environment(production_env)["object_store"]
    listing = store.client().list_objects_v2(Bucket=bucket) if _bucket_exists(store) else {}
    assert listing.get("KeyCount", 0) == 0


def _bucket_exists(store: S3ObjectStore) -> bool:
    names = {b["Name"] for b in store.client().list_buckets()["Buckets"]}
    return store.bucket in names


def test_a_partial_rerun_loads_its_inputs_from_postgres_and_s3(
    production_env: dict[str, str], production_instance: dg.DagsterInstance
) -> None:
    first = _run(production_env, production_instance)
    assert first.success
    job = build_definitions(resources_from_environment(production_env)).resolve_job_def(
        "trading_signals_job"
    )
    # Only the last two assets: trading_signal and market_data come from the first run's rows
    # and objects.
    second = job.execute_in_process(
        partition_key=partition_key_for("TSLA", TRADING_DAY),
        instance=production_instance,
        asset_selection=[dg.AssetKey("order"), dg.AssetKey("portfolio")],
    )
    assert second.success
    assert second.output_for_node("order").placed == first.output_for_node("order").placed
    loaded = {
        e.event_specific_data.input_name
        for e in second.all_events
        if e.event_type_value == "LOADED_INPUT" and e.step_key == "order"
    }
    assert {"trading_signal", "market_data"} <= loaded
    rows = resources_from_environment(production_env)["artifact_db"].query(
        execution_id=second.run_id
    )
    assert sorted(r.step_name for r in rows) == ["order", "portfolio"]
