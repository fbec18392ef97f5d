"""The whole graph materialized for one symbol-day partition on the embedded defaults."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from io_managers.artifact_store import ArtifactStore
from tests.conftest import TRADING_DAY
from trading_assets.definitions import build_definitions
from trading_assets.environment import resources_from_environment
from trading_assets.models import OrderDecision, PortfolioSnapshot, TradingSignal
from trading_assets.partitions import partition_key_for

ARTIFACT_TYPES = {
    "market_data": "market_data",
    "daily_chart": "chart",
    "weekly_chart": "chart",
    "llm_analysis": "llm",
    "trading_signal": "signal",
    "order": "order",
    "portfolio": "portfolio",
}
WORKFLOW_FIELDS = ("workflow_id", "execution_id", "step_name", "dag_id", "task_id",
                   "partition_key", "partition_date", "symbol", "object_uri", "content_hash",
                   "size_bytes", "created_at")


def _run(env: dict[str, str], instance: dg.DagsterInstance, symbol: str = "TSLA",
         day: dt.date = TRADING_DAY) -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions("symbol", [symbol])
    job = build_definitions(resources_from_environment(env)).resolve_job_def(
        "trading_signals_job")
    return job.execute_in_process(partition_key=partition_key_for(symbol, day),
                                  instance=instance, raise_on_error=False)


def _store(env: dict[str, str]) -> ArtifactStore:
    io_manager = resources_from_environment(env)["io_manager"]
    return ArtifactStore(io_manager.artifacts.database, io_manager.artifacts.object_store)


def test_whole_graph_writes_one_row_per_asset_with_workflow_fields(
    data_env: dict[str, str], instance: dg.DagsterInstance
) -> None:
    result = _run(data_env, instance)
    assert result.success
    rows = _store(data_env).database.query(execution_id=result.run_id)
    assert sorted((r.step_name, r.type) for r in rows) == sorted(ARTIFACT_TYPES.items())
    for row in rows:
        missing = [f for f in WORKFLOW_FIELDS if getattr(row, f) in (None, "")]
        assert not missing, f"{row.step_name} lacks {missing}"
        assert row.workflow_id == row.dag_id == "trading_signals_job"
        assert row.partition_key == "2025-06-02|TSLA" and row.partition_date == TRADING_DAY
        assert Path(row.object_uri.removeprefix("file://")).stat().st_size == row.size_bytes

    signal = result.output_for_node("trading_signal")
    assert isinstance(signal, TradingSignal) and signal.model_name == "offline-rules-v1"
    decision = result.output_for_node("order")
    assert isinstance(decision, OrderDecision) and decision.reason
    snapshot = result.output_for_node("portfolio")
    assert isinstance(snapshot, PortfolioSnapshot)
    assert snapshot.total_value == pytest.approx(
        snapshot.cash + sum(p.market_value for p in snapshot.positions))

    llm_row = next(r for r in rows if r.type == "llm")
    assert llm_row.model_name == "offline-rules-v1" and "TSLA" in llm_row.prompt
    assert llm_row.prompt_length == len(llm_row.prompt)
    chart_rows = {r.chart_type for r in rows if r.type == "chart"}
    assert chart_rows == {"daily", "weekly"}


def test_materialization_metadata_has_artifact_uri_size_and_thumbnail(
    data_env: dict[str, str], instance: dg.DagsterInstance
) -> None:
    result = _run(data_env, instance)
    by_asset = {
        m.asset_key.to_user_string(): m.metadata for m in result.get_asset_materialization_events()
        for m in [m.materialization]
    }
    # mlflow_run (tests/tracking) logs to MLflow after the seven; it stores no artifact row.
    assert set(by_asset) == {*ARTIFACT_TYPES, "mlflow_run"}
    for name in ARTIFACT_TYPES:
        entries = by_asset[name]
        assert {"artifact_id", "object_uri", "size_bytes"} <= set(entries)
        # The artifact browser's page for the row; a local object is text, not a dead link.
        assert entries["artifact_page"] == dg.MetadataValue.url(
            f"http://127.0.0.1:8000/artifacts/{entries['artifact_id'].value}"
        )
        assert isinstance(entries["object_uri"], dg.TextMetadataValue)
    # Numbers the Plots tab can chart across partitions.
    assert isinstance(by_asset["trading_signal"]["confidence_score"], dg.FloatMetadataValue)
    thumbnail = by_asset["daily_chart"]["thumbnail"].value
    assert "data:image/png;base64," in thumbnail


def test_rematerializing_adds_rows_loads_newest_and_never_orders_twice(
    data_env: dict[str, str], instance: dg.DagsterInstance
) -> None:
    first = _run(data_env, instance)
    second = _run(data_env, instance)
    assert first.success and second.success
    store = _store(data_env)
    rows = store.database.query(symbol="TSLA", limit=100)
    assert len(rows) == 14
    latest = store.database.latest("trading_signal", "2025-06-02|TSLA")
    assert latest.execution_id == second.run_id
    first_order, second_order = first.output_for_node("order"), second.output_for_node("order")
    if first_order.placed:
        assert second_order.reused_existing
        assert second_order.order.order_ref == first_order.order.order_ref


def test_no_bar_after_the_partition_date(
    data_env: dict[str, str], instance: dg.DagsterInstance
) -> None:
    result = _run(data_env, instance, day=dt.date(2025, 3, 14))
    bars = result.output_for_node("market_data").bars
    assert bars.index.max() == pd.Timestamp("2025-03-14")
    assert len(bars) == 520


def test_a_csv_source_without_files_fails_with_the_fix(
    tmp_path: Path, data_env: dict[str, str], instance: dg.DagsterInstance
) -> None:
    empty = tmp_path / "market"
    empty.mkdir()
    env = {**data_env, "MARKET_DATA_SOURCE": "csv", "MARKET_DATA_DIR": str(empty)}
    result = _run(env, instance)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_key == "market_data"
    assert "TSLA.csv" in failure.step_failure_data.error.to_string()
    assert _store(env).database.query(symbol="TSLA") == []  # nothing half-written


def test_a_csv_source_records_its_file(
    tmp_path: Path, data_env: dict[str, str], instance: dg.DagsterInstance
) -> None:
    folder = tmp_path / "market"
    folder.mkdir()
    synthetic = _run(data_env, instance).output_for_node("market_data").bars
    synthetic.reset_index().to_csv(folder / "TSLA.csv", index=False)
    env = {**data_env, "MARKET_DATA_SOURCE": "csv", "MARKET_DATA_DIR": str(folder)}
    result = _run(env, instance)
    assert result.success
    data = result.output_for_node("market_data")
    assert data.source == "csv" and data.source_detail.endswith("TSLA.csv")
    assert not data.is_synthetic
