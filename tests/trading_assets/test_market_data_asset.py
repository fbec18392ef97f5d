"""market_data refuses a day that has not closed: one line saying when it can run, no retry."""

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

import trading_assets.market_data.assets as market_data_module
from tests.conftest import TRADING_DAY
from trading_assets.calendar import TIMEZONE, check_closed_session
from trading_assets.environment import resources_from_environment
from trading_assets.partitions import partition_key_for


def test_an_unclosed_day_fails_in_one_line_without_a_cause_or_a_retry(
    tmp_path: Path, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The partition exists (as on an exchange holiday's evening) but its session is still open.
    before_close = dt.datetime.combine(TRADING_DAY, dt.time(15, 0), ZoneInfo(TIMEZONE))
    monkeypatch.setattr(
        market_data_module, "check_closed_session",
        lambda day, _now: check_closed_session(day, before_close),
    )
    instance.add_dynamic_partitions("symbol", ["TSLA"])
    result = dg.materialize(
        [market_data_module.market_data],
        partition_key=partition_key_for("TSLA", TRADING_DAY),
        resources=resources_from_environment({"TRADING_DATA_DIR": str(tmp_path / "data")}),
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    events = [e.event_type_value for e in result.all_events]
    assert "STEP_UP_FOR_RETRY" not in events
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    error = failure.step_failure_data.error
    assert error.cause is None and error.context is None
    assert error.message.removeprefix("dagster._core.definitions.events.Failure: ") == (
        "2025-06-02 has not closed yet: run it from 16:00 New York time (20:00 UTC) that day; "
        "the latest closed trading day is 2025-05-30\n"
    )
