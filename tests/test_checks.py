"""Every asset check passing on a clean run, and failing (blocking the order) when it should."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import pandas as pd

from io_managers.artifact_store import ArtifactStore
from tests.conftest import TRADING_DAY
from trading_assets.checks import ASSET_CHECKS, read_stored
from trading_assets.definitions import ASSETS, build_definitions
from trading_assets.environment import resources_from_environment
from trading_assets.execution.assets import RISK_GATE_CHECKS
from trading_assets.market_data.synthetic import synthetic_bars
from trading_assets.partitions import partition_key_for


def _run(env: dict[str, str], instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions("symbol", ["TSLA"])
    job = build_definitions(resources_from_environment(env)).resolve_job_def(
        "trading_signals_job")
    return job.execute_in_process(partition_key=partition_key_for("TSLA", TRADING_DAY),
                                  instance=instance, raise_on_error=False)


def _evaluations(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def _materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def test_every_check_runs_and_passes_on_a_clean_partition(
    data_env: dict[str, str], instance: dg.DagsterInstance
) -> None:
    result = _run(data_env, instance)
    assert result.success
    evaluations = _evaluations(result)
    stage_checks = {key.name for c in ASSET_CHECKS for key in c.check_keys}
    gate_checks = {spec.name for spec in RISK_GATE_CHECKS}
    assert len(stage_checks) == 14
    assert set(evaluations) == stage_checks | gate_checks
    assert all(evaluations.values()), evaluations


def _csv_env(tmp_path: Path, data_env: dict[str, str], bars: pd.DataFrame) -> dict[str, str]:
    folder = tmp_path / "market"
    folder.mkdir()
    bars.reset_index().to_csv(folder / "TSLA.csv", index=False)
    return {**data_env, "MARKET_DATA_SOURCE": "csv", "MARKET_DATA_DIR": str(folder)}


def test_a_missing_trading_day_blocks_everything_downstream(
    tmp_path: Path, data_env: dict[str, str], instance: dg.DagsterInstance
) -> None:
    bars = synthetic_bars("TSLA", TRADING_DAY, 300).bars.drop(pd.Timestamp("2025-05-01"))
    result = _run(_csv_env(tmp_path, data_env, bars), instance)
    assert not result.success
    assert _evaluations(result)["market_data_no_missing_days"] is False
    assert _materialized(result) == {"market_data"}


def test_stale_data_blocks_the_order(
    tmp_path: Path, data_env: dict[str, str], instance: dg.DagsterInstance
) -> None:
    bars = synthetic_bars("TSLA", dt.date(2025, 5, 28), 300).bars
    result = _run(_csv_env(tmp_path, data_env, bars), instance)
    evaluations = _evaluations(result)
    assert evaluations["market_data_not_stale"] is False
    assert "order" not in _materialized(result)


def test_a_signal_below_the_risk_reward_minimum_blocks_the_order(
    data_env: dict[str, str], instance: dg.DagsterInstance
) -> None:
    # The offline analyst's BUY on this partition targets twice its risk.
    result = _run({**data_env, "MIN_RISK_REWARD": "3"}, instance)
    assert result.output_for_node("trading_signal").action.value == "BUY"
    assert _evaluations(result)["trading_signal_levels"] is False
    assert {"trading_signal"} <= _materialized(result)
    assert not {"order", "portfolio"} & _materialized(result)


def test_a_corrupted_object_fails_its_storage_check(
    data_env: dict[str, str], instance: dg.DagsterInstance
) -> None:
    first = _run(data_env, instance)
    uri = first.get_asset_materialization_events()[0].materialization.metadata["object_uri"].value
    Path(uri.removeprefix("file://")).write_bytes(b"not parquet")
    store = ArtifactStore(*(resources_from_environment(data_env)[k]
                            for k in ("artifact_db", "object_store")))
    (problem,) = read_stored(store, "market_data", "2025-06-02|TSLA").problems
    assert "changed since it was written" in problem and "re-materialize" in problem
    assert read_stored(store, "order", "2025-06-02|TSLA").problems == []
    assert read_stored(store, "order", "2025-06-03|TSLA").problems == [
        "no artifact row for order 2025-06-03|TSLA"]


def test_a_short_history_warns_and_the_graph_still_runs(
    tmp_path: Path, data_env: dict[str, str], instance: dg.DagsterInstance
) -> None:
    bars = synthetic_bars("TSLA", TRADING_DAY, 300).bars.iloc[-120:]
    result = _run(_csv_env(tmp_path, data_env, bars), instance)
    evaluations = _evaluations(result)
    assert evaluations["market_data_enough_bars"] is False  # WARN: SMA 200 is left out
    assert evaluations["market_data_no_missing_days"] is True
    assert "trading_signal" in _materialized(result)


def test_inconsistent_ohlc_from_a_file_never_gets_past_market_data(
    tmp_path: Path, data_env: dict[str, str], instance: dg.DagsterInstance
) -> None:
    # The folder source refuses such a bar itself (market_data_ohlc_consistent guards sources
    # that do not, such as the broker's bars): the step fails naming the file, day and fix.
    bars = synthetic_bars("TSLA", TRADING_DAY, 300).bars.copy()
    day = pd.Timestamp("2025-05-01")
    bars.loc[day, "high"] = bars.loc[day, "low"] - 1.0  # a high below the low
    result = _run(_csv_env(tmp_path, data_env, bars), instance)
    assert not result.success and _materialized(result) == set()
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = str(failure.step_failure_data.error)
    assert "TSLA.csv" in message and "2025-05-01 is inconsistent" in message


DOWNSTREAM = ["daily_chart", "weekly_chart", "llm_analysis", "trading_signal", "order", "portfolio"]


def _run_only(
    env: dict[str, str], instance: dg.DagsterInstance, assets: list[str]
) -> dg.ExecuteInProcessResult:
    job = build_definitions(resources_from_environment(env)).resolve_job_def(
        "trading_signals_job")
    return job.execute_in_process(
        partition_key=partition_key_for("TSLA", TRADING_DAY), instance=instance,
        raise_on_error=False, asset_selection=[dg.AssetKey(a) for a in assets],
    )


def _failures(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    return {e.step_key: str(e.step_failure_data.error.message) for e in result.all_events
            if e.is_step_failure and e.step_key is not None and e.step_failure_data}


def test_downstream_of_a_failed_blocking_check_fails_at_once_with_its_reason(
    tmp_path: Path, data_env: dict[str, str], instance: dg.DagsterInstance
) -> None:
    env = _csv_env(tmp_path, data_env, synthetic_bars("TSLA", TRADING_DAY, 300).bars.drop(
        pd.Timestamp("2025-05-01")))
    assert not _run(env, instance).success
    rows_before = len(resources_from_environment(env)["artifact_db"].query(limit=100))
    # The downstream assets alone, as from the UI: the loader refuses the failed market data.
    result = _run_only(env, instance, DOWNSTREAM)
    assert not result.success and _materialized(result) == set()
    failures = _failures(result)
    assert set(failures) == {"daily_chart", "weekly_chart"}  # the rest never started
    assert (
        "market_data of 2025-06-02|TSLA failed market_data_no_missing_days (1 trading day has "
        "no bar: 2025-05-01): fix the source (MARKET_DATA_SOURCE) and re-materialize market_data"
    ) in failures["daily_chart"]
    assert len(resources_from_environment(env)["artifact_db"].query(limit=100)) == rows_before


def test_an_order_is_never_computed_from_a_signal_that_failed_its_check(
    data_env: dict[str, str], instance: dg.DagsterInstance
) -> None:
    env = {**data_env, "MIN_RISK_REWARD": "3"}
    assert _evaluations(_run(env, instance))["trading_signal_levels"] is False
    result = _run_only(env, instance, ["order", "portfolio"])
    assert not result.success and _materialized(result) == set()
    assert "failed trading_signal_levels (" in _failures(result)["order"]


def test_an_artifact_stored_without_its_checks_is_refused_until_they_run(
    data_env: dict[str, str], instance: dg.DagsterInstance
) -> None:
    definitions = build_definitions(resources_from_environment(data_env))
    instance.add_dynamic_partitions("symbol", ["TSLA"])
    key = partition_key_for("TSLA", TRADING_DAY)
    market = dg.AssetSelection.assets("market_data")
    graph = [*ASSETS, *ASSET_CHECKS]
    unchecked = dg.materialize(
        graph, selection=market.without_checks(), partition_key=key,
        instance=instance, resources=definitions.resources, raise_on_error=False)
    assert unchecked.success and not unchecked.get_asset_check_evaluations()
    refused = _run_only(data_env, instance, ["daily_chart"])
    assert "has no result for its blocking checks market_data_stored" in _failures(
        refused)["daily_chart"]
    # Running the checks alone (the UI's Execute on the Checks tab) clears the same artifact.
    job = definitions.resolve_job_def("trading_signals_job")
    checks = {k for k in job.asset_layer.asset_graph.asset_check_keys
              if k.asset_key == dg.AssetKey("market_data")}
    checked = job.get_subset(asset_selection=set(), asset_check_selection=checks
                             ).execute_in_process(partition_key=key, instance=instance)
    assert _materialized(checked) == set()
    assert all(e.passed for e in checked.get_asset_check_evaluations())
    assert _run_only(data_env, instance, ["daily_chart"]).success
