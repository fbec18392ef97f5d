"""A backfill's ranged run: one run covers a symbol's many days, each day stored, checked and
decided on its own, the days in date order (BackfillPolicy.single_run, trading_assets/ranged.py).

These launch the run as Dagster's backfill daemon does: the trading job with the partition-range
tags. tests/test_native_backfill.py launches real backfills through the webserver.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from io_managers.artifact_store import ArtifactStore
from tests.conftest import TRADING_DAY
from trading_assets.calendar import sessions_between
from trading_assets.definitions import ASSETS, build_definitions
from trading_assets.environment import resources_from_environment
from trading_assets.market_data.synthetic import synthetic_bars
from trading_assets.models import OrderDecision
from trading_assets.partitions import partition_key_for
from trading_assets.ranged import range_tags
from trading_assets.tags import UI_BACKFILL_TAG

DAYS = [d.date() for d in sessions_between(dt.date(2025, 5, 22), TRADING_DAY)]


def _ranged_run(
    env: dict[str, str], instance: dg.DagsterInstance, days: list[dt.date] = DAYS,
    symbol: str = "TSLA",
) -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions("symbol", [symbol])
    job = build_definitions(resources_from_environment(env)).resolve_job_def(
        "trading_signals_job")
    return job.execute_in_process(
        instance=instance,
        raise_on_error=False,
        tags={
            **range_tags(symbol, days[0], days[-1]),
            UI_BACKFILL_TAG: "test-backfill",
        },
    )


def _store(env: dict[str, str]) -> ArtifactStore:
    return resources_from_environment(env)["artifacts"].store()


def test_one_run_stores_checks_and_decides_every_day_of_the_range_in_date_order(
    data_env: dict[str, str], instance: dg.DagsterInstance
) -> None:
    assert len(DAYS) == 7
    result = _ranged_run(data_env, instance)
    assert result.success
    store = _store(data_env)
    rows = store.database.query(execution_id=result.run_id, limit=1000)
    by_asset: dict[str, list] = {}
    for row in rows:
        by_asset.setdefault(row.step_name, []).append(row)
    # One artifact per asset and day, each on its own partition.
    for asset in (a.key.to_user_string() for a in ASSETS):
        assert sorted(r.partition_date for r in by_asset[asset]) == DAYS, asset
    # The days were decided oldest first: the order artifacts were written in date order.
    orders = sorted(by_asset["order"], key=lambda r: r.id)
    assert [r.partition_date for r in orders] == DAYS
    # Each partition's materialization carries its own artifact's id.
    events = [e for e in result.get_asset_materialization_events()
              if e.asset_key.to_user_string() == "order"]
    ids = {str(e.partition): e.materialization.metadata["artifact_id"].value for e in events}
    assert ids == {r.partition_key: r.id for r in orders}
    # Each check reports once for the range in Dagster, and every day's result is recorded on
    # that day's artifact (what a consumer's IO manager clears it by).
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == len({e.check_name for e in evaluations}) == 19
    assert all(e.passed for e in evaluations)
    missing_days = next(e for e in evaluations if e.check_name == "market_data_no_missing_days")
    assert missing_days.description.startswith(f"passed on all {len(DAYS)} partitions")
    for row in by_asset["market_data"]:
        recorded = store.database.check_results(row)
        assert recorded["market_data_no_missing_days"].passed
        assert recorded["market_data_no_missing_days"].partition_key == row.partition_key
    # The MLflow run of each day was logged and linked to its rows.
    assert all(r.mlflow_run_id for r in by_asset["order"])


def test_the_simulator_sees_each_symbols_days_in_order_and_a_rerun_places_nothing_twice(
    data_env: dict[str, str], instance: dg.DagsterInstance
) -> None:
    first = _ranged_run(data_env, instance)
    assert first.success
    simulator = resources_from_environment(data_env)["broker"].paper()
    with simulator.engine.connect() as conn:
        marks = conn.execute(sa.text(
            "SELECT mark_date FROM paper_marks WHERE symbol = 'TSLA' ORDER BY rowid"
        )).scalars().all()
        placed = conn.execute(sa.text(
            "SELECT trade_date, COUNT(*) FROM paper_orders GROUP BY symbol, trade_date"
        )).all()
    assert [dt.date.fromisoformat(str(m)[:10]) for m in marks] == DAYS
    assert all(count == 1 for _, count in placed)
    second = _ranged_run(data_env, instance)
    assert second.success
    with simulator.engine.connect() as conn:
        again = conn.execute(sa.text(
            "SELECT trade_date, COUNT(*) FROM paper_orders GROUP BY symbol, trade_date"
        )).all()
    assert again == placed
    decisions = second.output_for_node("order")
    assert isinstance(decisions, dict) and len(decisions) == len(DAYS)
    for decision in decisions.values():
        assert isinstance(decision, OrderDecision)
        if decision.placed:
            assert decision.reused_existing


def test_a_day_that_fails_a_blocking_check_stops_the_range_downstream(
    tmp_path: Path, data_env: dict[str, str], instance: dg.DagsterInstance
) -> None:
    # A day missing from the source: every later day's window lacks it.
    bars = synthetic_bars("TSLA", TRADING_DAY, 300).bars.drop(pd.Timestamp(DAYS[2]))
    folder = tmp_path / "market"
    folder.mkdir()
    bars.reset_index().to_csv(folder / "TSLA.csv", index=False)
    env = {**data_env, "MARKET_DATA_SOURCE": "csv", "MARKET_DATA_DIR": str(folder)}
    result = _ranged_run(env, instance, days=[d for d in DAYS if d != DAYS[2]])
    assert not result.success
    failed = next(e for e in result.get_asset_check_evaluations()
                  if e.check_name == "market_data_no_missing_days")
    assert not failed.passed
    later = [str(partition_key_for("TSLA", d)) for d in DAYS[3:]]
    assert failed.metadata["failed_partitions"].value == later
    assert failed.description.startswith(f"{len(later)} of {len(DAYS)} partitions failed, "
                                         f"first {later[0]}: 1 trading day has no bar")
    # Nothing downstream of market data was decided for any day of the run.
    rows = _store(env).database.query(execution_id=result.run_id, limit=1000)
    assert {r.step_name for r in rows} == {"market_data"}


def test_days_run_after_a_later_day_are_not_traded_and_say_why(
    data_env: dict[str, str], instance: dg.DagsterInstance
) -> None:
    # A later day first (e.g. two one-day runs of a backfill started out of order), then earlier.
    assert _ranged_run(data_env, instance, days=DAYS[-1:]).success
    result = _ranged_run(data_env, instance, days=DAYS[:2])
    assert result.success
    for decision in result.output_for_node("order").values():
        assert not decision.placed
        assert decision.reason.startswith(
            f"not traded: the simulator's TSLA account is already at {DAYS[-1]}")
    simulator = resources_from_environment(data_env)["broker"].paper()
    assert simulator.orders_between(DAYS[0], DAYS[1]) == []
