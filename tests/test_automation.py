"""The schedule, the sensors and the checks as the Dagster daemon and UI run them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from pytest_httpserver import HTTPServer

from resources.notifier import WebhookNotifier
from resources.watchlist import WatchlistResource
from tests.conftest import TRADING_DAY
from trading_assets.definitions import build_definitions
from trading_assets.environment import resources_from_environment
from trading_assets.partitions import SymbolError, partition_key_for
from trading_assets.schedules import ScheduleConfigError, build_trading_day_schedule
from trading_assets.sensors import run_failure_alert_sensor, watchlist_sensor

NY = ZoneInfo("America/New_York")
# Lets Dagster check each request's partition against the job's partitions. Built at import,
# outside any instance context, because Dagster binds repository loading to the current one.
REPOSITORY = build_definitions(
    resources_from_environment({"TRADING_DATA_DIR": "unused"})
).get_repository_def()


@pytest.fixture
def instance(stored_instance: dg.DagsterInstance) -> dg.DagsterInstance:
    """A schedule's context needs an instance it can pass by reference: a stored one."""
    return stored_instance


def _tick(schedule: dg.ScheduleDefinition, when: dt.datetime, instance: dg.DagsterInstance,
          symbols: str = "TSLA,NVDA") -> dg.ScheduleExecutionData:
    # As a context manager: the context enters the instance and must leave it again.
    with dg.build_schedule_context(
        instance=instance, scheduled_execution_time=when, repository_def=REPOSITORY,
        resources={"watchlist": WatchlistResource(symbols=symbols)},
    ) as context:
        return schedule.evaluate_tick(context)


def test_schedule_over_thanksgiving_week(instance: dg.DagsterInstance) -> None:
    instance.add_dynamic_partitions("symbol", ["TSLA", "NVDA"])
    schedule = build_trading_day_schedule("0 9 * * 1-5")
    partitions = {}
    for day in range(23, 28):
        data = _tick(schedule, dt.datetime(2026, 11, day, 9, 0, tzinfo=NY), instance)
        partitions[day] = sorted(r.partition_key for r in data.run_requests or [])
        if day == 26:
            assert "not an NYSE trading day" in data.skip_message
    assert partitions == {
        23: ["2026-11-20|NVDA", "2026-11-20|TSLA"],  # Monday: Friday's close
        24: ["2026-11-23|NVDA", "2026-11-23|TSLA"],
        25: ["2026-11-24|NVDA", "2026-11-24|TSLA"],
        26: [],  # Thanksgiving
        27: ["2026-11-25|NVDA", "2026-11-25|TSLA"],  # early close day, before the close
    }


def test_schedule_run_keys_make_repeated_ticks_idempotent(instance: dg.DagsterInstance) -> None:
    instance.add_dynamic_partitions("symbol", ["TSLA"])
    schedule = build_trading_day_schedule("0 9 * * 1-5")
    when = dt.datetime(2026, 11, 24, 9, 0, tzinfo=NY)
    first = _tick(schedule, when, instance, "TSLA").run_requests
    again = _tick(schedule, when, instance, "TSLA").run_requests
    assert [r.run_key for r in first] == [r.run_key for r in again] == ["2026-11-23|TSLA"]


def test_schedule_skips_symbols_removed_from_the_watchlist(instance: dg.DagsterInstance) -> None:
    instance.add_dynamic_partitions("symbol", ["TSLA", "NVDA"])
    schedule = build_trading_day_schedule("0 9 * * 1-5")
    data = _tick(schedule, dt.datetime(2026, 11, 24, 9, 0, tzinfo=NY), instance, "NVDA")
    assert [r.partition_key for r in data.run_requests] == ["2026-11-23|NVDA"]
    assert "TSLA" in instance.get_dynamic_partitions("symbol")  # history stays


@pytest.mark.parametrize("cron", ["every day", "0 9 * *", "61 9 * * 1-5", ""])
def test_invalid_cron_names_the_variable(cron: str) -> None:
    with pytest.raises(ScheduleConfigError, match="WORKFLOW_SCHEDULE="):
        build_trading_day_schedule(cron)


def test_custom_cron_is_used(data_env: dict[str, str]) -> None:
    defs = build_definitions(resources_from_environment(data_env), cron="30 16 * * 1-5")
    (schedule,) = defs.schedules
    assert schedule.cron_schedule == "30 16 * * 1-5"
    assert schedule.execution_timezone == "America/New_York"


def test_watchlist_sensor_adds_new_symbols_and_keeps_old_ones(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    instance.add_dynamic_partitions("symbol", ["TSLA"])
    watchlist = tmp_path / "watchlist.txt"
    watchlist.write_text("# my list\nnvda\nTSLA  # core\n\naapl\n")
    with dg.build_sensor_context(
        instance=instance, resources={"watchlist": WatchlistResource(file=str(watchlist))}
    ) as context:
        result = watchlist_sensor(context)
        (request,) = result.dynamic_partitions_requests
        assert list(request.partition_keys) == ["NVDA", "AAPL"]
        instance.add_dynamic_partitions("symbol", list(request.partition_keys))
        assert isinstance(watchlist_sensor(context), dg.SkipReason)
    assert watchlist_sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_watchlist_with_a_bad_symbol_fails_naming_the_file(tmp_path: Path) -> None:
    watchlist = tmp_path / "w.txt"
    watchlist.write_text("TSLA\nBRK|B\n")
    with pytest.raises(SymbolError, match=f"WATCHLIST_FILE {watchlist}"):
        WatchlistResource(file=str(watchlist)).current()


def _failed_run(data_env: dict[str, str], instance: dg.DagsterInstance, tmp_path: Path):
    empty = tmp_path / "market"
    empty.mkdir()
    env = {**data_env, "MARKET_DATA_SOURCE": "csv", "MARKET_DATA_DIR": str(empty)}
    instance.add_dynamic_partitions("symbol", ["TSLA"])
    job = build_definitions(resources_from_environment(env)).resolve_job_def(
        "trading_signals_job")
    result = job.execute_in_process(partition_key=partition_key_for("TSLA", TRADING_DAY),
                                    instance=instance, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    return result.dagster_run, failure


def test_run_failure_sensor_posts_job_partition_step_and_error(
    data_env: dict[str, str], instance: dg.DagsterInstance, tmp_path: Path,
    httpserver: HTTPServer,
) -> None:
    run, failure = _failed_run(data_env, instance, tmp_path)
    httpserver.expect_oneshot_request("/hook", method="POST").respond_with_data("ok")
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert_sensor", dagster_instance=instance, dagster_run=run,
        dagster_event=failure,
        resources={"notifier": WebhookNotifier(webhook_url=httpserver.url_for("/hook"))},
    ).for_run_failure()
    run_failure_alert_sensor(context)
    (request, _), = httpserver.log
    text = json.loads(request.data)["text"]
    assert "trading_signals_job failed for partition 2025-06-02|TSLA" in text
    assert "step market_data:" in text and "has no .csv or .parquet files" in text


def test_run_failure_sensor_logs_without_a_webhook(
    data_env: dict[str, str], instance: dg.DagsterInstance, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    run, failure = _failed_run(data_env, instance, tmp_path)
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert_sensor", dagster_instance=instance, dagster_run=run,
        dagster_event=failure, resources={"notifier": WebhookNotifier()},
    ).for_run_failure()
    assert WebhookNotifier().notify("x", context.log) is False
    run_failure_alert_sensor(context)


def test_webhook_errors_are_retried_then_reported(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook").respond_with_data("down", status=503)
    notifier = WebhookNotifier(webhook_url=httpserver.url_for("/hook"), attempts=2)
    with pytest.raises(Exception, match="did not answer after 2 attempts") as info:
        notifier.notify("x", dg.get_dagster_logger())
    assert "/hook" not in str(info.value)
    assert len(httpserver.log) == 2
