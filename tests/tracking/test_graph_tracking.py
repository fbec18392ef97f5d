"""mlflow_run inside trading_signals_job: logged after the seven assets, never in their way."""

from __future__ import annotations

import time

import dagster as dg
import pytest
from mlflow import MlflowClient

from tests.conftest import TRADING_DAY
from tests.tracking.helpers import store_for, unreachable_url
from trading_assets.definitions import build_definitions
from trading_assets.environment import resources_from_environment
from trading_assets.partitions import partition_key_for

# MLflow's own SQLAlchemy models, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy")

SEVEN = {"market_data", "daily_chart", "weekly_chart", "llm_analysis", "trading_signal", "order",
         "portfolio"}


def _run(env: dict[str, str], instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions("symbol", ["TSLA"])
    job = build_definitions(resources_from_environment(env)).resolve_job_def(
        "trading_signals_job")
    return job.execute_in_process(partition_key=partition_key_for("TSLA", TRADING_DAY),
                                  instance=instance, raise_on_error=False)


def _materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def test_the_job_logs_its_partition_and_its_rows_carry_the_run(
    tracking_env: dict[str, str], instance: dg.DagsterInstance
) -> None:
    result = _run(tracking_env, instance)
    assert result.success
    assert _materialized(result) == SEVEN | {"mlflow_run"}
    rows = store_for(tracking_env).database.query(execution_id=result.run_id)
    assert {r.step_name for r in rows} == SEVEN
    (run_id,) = {r.mlflow_run_id for r in rows}
    (experiment_id,) = {r.mlflow_experiment_id for r in rows}
    client = MlflowClient(tracking_uri=resources_from_environment(tracking_env)["mlflow"]
                          .tracking_uri)
    run = client.get_run(run_id)
    assert run.info.experiment_id == experiment_id
    assert run.data.tags["dagster.run_id"] == result.run_id
    assert run.data.tags["dagster.job"] == "trading_signals_job"
    assert run.data.tags["trading.action"] == result.output_for_node("trading_signal").action
    assert run.data.metrics["portfolio_value"] == pytest.approx(
        result.output_for_node("portfolio").total_value)


def test_mlflow_down_fails_only_the_tracking_step_and_the_trade_is_stored(
    data_env: dict[str, str], instance: dg.DagsterInstance
) -> None:
    env = {**data_env, "MLFLOW_TRACKING_URI": unreachable_url(), "MLFLOW_TIMEOUT_SECONDS": "3",
           "MLFLOW_MAX_RETRIES": "0"}
    started = time.monotonic()
    result = _run(env, instance)
    assert time.monotonic() - started < 120
    assert not result.success
    assert _materialized(result) == SEVEN
    failed = {e.step_key for e in result.all_events if e.is_step_failure}
    assert failed == {"mlflow_run"}
    rows = store_for(env).database.query(execution_id=result.run_id)
    assert {r.step_name for r in rows} == SEVEN
    assert {r.mlflow_run_id for r in rows} == {None}
