import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from trading_assets.calendar import (
    REGULAR_CLOSE,
    TIMEZONE,
    check_closed_session,
    is_trading_day,
    latest_completed_session,
    sessions_between,
    weekday_holidays,
)
from trading_assets.errors import SettingError
from trading_assets.partitions import (
    SymbolError,
    _trading_day_partitions,
    normalize_symbol,
    parse_start_date,
    parse_symbols,
    partition_key_for,
    symbol_and_date,
    symbol_day,
    trading_day,
)

NY = dt.timezone(dt.timedelta(hours=-5))  # EST, enough for these winter timestamps
REPO = Path(__file__).resolve().parents[2]


def test_date_partitions_are_trading_days_only() -> None:
    keys = set(trading_day.get_partition_keys(current_time=dt.datetime(2025, 1, 10)))
    assert "2024-12-24" in keys and "2024-12-26" in keys
    assert "2024-12-25" not in keys  # Christmas
    assert "2024-12-28" not in keys  # Saturday
    assert "2025-01-09" not in keys  # national day of mourning (Carter): an unplanned closure
    assert "2024-07-04" not in keys


def test_every_date_key_is_an_exchange_session() -> None:
    keys = trading_day.get_partition_keys(current_time=dt.datetime(2025, 12, 31))
    assert all(is_trading_day(dt.date.fromisoformat(k)) for k in keys)
    sessions = sessions_between(dt.date.fromisoformat(keys[0]), dt.date.fromisoformat(keys[-1]))
    assert keys == [d.date().isoformat() for d in sessions]


def test_holidays_come_from_the_exchange_calendar() -> None:
    holidays = weekday_holidays(dt.date(2026, 1, 1), dt.date(2026, 12, 31))
    assert dt.date(2026, 11, 26) in holidays  # Thanksgiving
    assert dt.date(2026, 4, 3) in holidays  # Good Friday
    assert len(holidays) == 10


def test_latest_completed_session_waits_for_the_close() -> None:
    before_close = dt.datetime(2026, 11, 20, 15, 59, tzinfo=NY)
    after_close = dt.datetime(2026, 11, 20, 16, 0, tzinfo=NY)
    assert latest_completed_session(before_close) == dt.date(2026, 11, 19)
    assert latest_completed_session(after_close) == dt.date(2026, 11, 20)
    monday_morning = dt.datetime(2026, 11, 23, 9, 0, tzinfo=NY)
    assert latest_completed_session(monday_morning) == dt.date(2026, 11, 20)


def test_an_early_close_counts_from_the_regular_close_as_its_partition_does() -> None:
    black_friday = dt.date(2026, 11, 27)  # closes at 13:00
    assert latest_completed_session(dt.datetime(2026, 11, 27, 15, 59, tzinfo=NY)) == dt.date(
        2026, 11, 25
    )
    assert latest_completed_session(dt.datetime(2026, 11, 27, 16, 0, tzinfo=NY)) == black_friday


def _instants() -> list[dt.datetime]:
    """Every 30 minutes, and a minute each side of 16:00, through weeks with a holiday on a
    Monday, a Thursday and a Friday, early closes and both DST changes."""
    weeks = [dt.date(2026, 1, 12), dt.date(2026, 3, 2), dt.date(2026, 3, 30),
             dt.date(2026, 10, 26), dt.date(2026, 11, 23), dt.date(2026, 12, 21)]
    ny, out = ZoneInfo(TIMEZONE), []
    for monday in weeks:
        for day in (monday + dt.timedelta(days=i) for i in range(7)):
            out += [dt.datetime.combine(day, dt.time(h, m), ny) for h in range(24) for m in (0, 30)]
            out.append(dt.datetime.combine(day, dt.time(15, 59), ny))
    return out


def test_the_latest_date_partition_is_the_latest_closed_session() -> None:
    """What "Latest" picks in the Materialize dialog: the UI's partitions at that moment."""
    leaked = 0
    for now in _instants():
        latest = latest_completed_session(now)
        with dg.partition_loading_context(now):
            last = dt.date.fromisoformat(trading_day.get_last_partition_key() or "")
            # What the CLI and the schedule pick is always a partition already.
            assert trading_day.has_partition_key(latest.isoformat()), now
        if last == latest:
            continue
        # An exchange holiday's evening: Dagster skips its excluded window and offers the next
        # session, which market_data refuses in one line until it closes.
        holidays = [d for d in weekday_holidays(latest, last) if d <= now.date()]
        assert holidays, f"at {now} the UI offers {last}, not closed, and it is no holiday"
        assert now >= dt.datetime.combine(holidays[-1], REGULAR_CLOSE, ZoneInfo(TIMEZONE)), now
        assert last == _sessions_after(latest)[0], now
        with pytest.raises(ValueError, match=rf"^{last} has not closed yet: run it from 16:00 "):
            check_closed_session(last, now)
        leaked += 1
    # Holiday evenings only (these weeks have five holidays); midnight windows with end_offset=1
    # offered the running day on every weekday before the close.
    assert leaked / len(_instants()) < 0.2


def _sessions_after(day: dt.date) -> list[dt.date]:
    return [d.date() for d in sessions_between(day + dt.timedelta(days=1), day + dt.timedelta(10))]


@pytest.mark.parametrize(
    ("day", "message"),
    [
        (dt.date(2026, 11, 26), "not an NYSE trading day"),
        (dt.date(2026, 11, 21), "Saturday"),
        (dt.date(2026, 11, 23), "has not closed yet"),
    ],
)
def test_check_closed_session_rejects(day: dt.date, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_closed_session(day, dt.datetime(2026, 11, 22, 12, 0, tzinfo=NY))


def test_symbols_are_normalised() -> None:
    assert parse_symbols(" tsla, NVDA ,brk.b,TSLA") == ["TSLA", "NVDA", "BRK.B"]


@pytest.mark.parametrize("bad", ["", "  ", "A|B", "A,B", "[SPY]", "1ABC", "TS LA", "ABCDEFGHIJKLM"])
def test_bad_symbols_are_rejected_with_the_rule(bad: str) -> None:
    with pytest.raises(SymbolError, match="symbol"):
        normalize_symbol(bad)


def test_empty_entry_in_a_list_is_rejected() -> None:
    with pytest.raises(SymbolError, match="empty symbol"):
        parse_symbols("TSLA,,NVDA")


def test_partition_key_round_trip() -> None:
    key = partition_key_for("TSLA", dt.date(2025, 6, 2))
    assert isinstance(key, dg.MultiPartitionKey)
    assert symbol_and_date(key) == ("TSLA", dt.date(2025, 6, 2))
    assert symbol_and_date(str(key)) == ("TSLA", dt.date(2025, 6, 2))
    assert set(symbol_day.partitions_defs[i].name for i in range(2)) == {"date", "symbol"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2004-8-19x", r"TRADING_START_DATE='2004-8-19x' is not a date: use YYYY-MM-DD, e\.g\. "),
        (
            "1600-01-01",
            r"TRADING_START_DATE=1600-01-01 is before 1677-09-22, the earliest date the XNYS "
            r"calendar has: use 1677-09-22 or later, e\.g\. 2004-08-19",
        ),
        ("2099-01-01", r"TRADING_START_DATE=2099-01-01 is after \d{4}-\d\d-\d\d, the last date"),
    ],
)
def test_a_bad_start_date_names_the_variable_the_value_and_an_example(
    value: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as err:
        _trading_day_partitions(value)
    assert "\n" not in str(err.value)
    with pytest.raises(SettingError, match=message):
        parse_start_date(value)


_CHECK_AFTER_IMPORT = """
import trading_assets.definitions
from trading_assets.environment import check_settings
print(check_settings())
"""


@pytest.mark.integration
def test_a_bad_start_date_does_not_break_the_import_and_is_one_reported_line(
    tmp_path: Path,
) -> None:
    env = _child_env(TRADING_START_DATE="1600-01-01", TRADING_DATA_DIR=str(tmp_path / "data"))
    proc = subprocess.run(
        [sys.executable, "-c", _CHECK_AFTER_IMPORT], cwd=REPO, env=env, capture_output=True,
        text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == repr([
        "TRADING_START_DATE=1600-01-01 is before 1677-09-22, the earliest date the XNYS calendar "
        "has: use 1677-09-22 or later, e.g. 2004-08-19"
    ])


def _child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADING_", "MARKET_"))}
    return env | extra


_LOAD_2004 = """
import datetime as dt, json
import trading_assets.definitions
from trading_assets.calendar import sessions_ending_at
from trading_assets.partitions import first_partition_day, trading_day
keys = trading_day.get_partition_keys(current_time=dt.datetime(2007, 2, 1))
history = sessions_ending_at(first_partition_day(), 520)
print(json.dumps({"keys": keys, "history": [d.date().isoformat() for d in history]}))
"""


@pytest.mark.integration
def test_history_from_2004_loads_with_every_closure_excluded() -> None:
    env = _child_env(TRADING_START_DATE="2004-08-19")
    proc = subprocess.run(
        [sys.executable, "-c", _LOAD_2004], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout)
    keys, history = loaded["keys"], loaded["history"]
    assert keys[0] == "2004-08-19"
    expected = sessions_between(dt.date(2004, 8, 19), dt.date.fromisoformat(keys[-1]))
    assert keys == [d.date().isoformat() for d in expected]
    for closed in ("2004-09-06", "2004-11-25", "2004-12-24", "2005-01-17", "2007-01-02"):
        assert closed not in keys  # Labor Day, Thanksgiving, Christmas (observed), MLK, Ford
    # Across the default calendar's start (20 years before today) without a seam.
    assert {"2006-11-30", "2006-12-01", "2006-12-04"} <= set(keys)
    # The bars market_data asks for before the first partition are sessions too.
    assert len(history) == 520 and history[-1] == "2004-08-19" and history[0] < "2002-08-01"
    assert "2004-06-11" not in history  # Reagan's funeral
    assert "2004-06-10" in history


@pytest.mark.integration
def test_a_run_on_bars_from_2002_as_a_user_with_that_history_does(
    tmp_path: Path, shared_mlflow_uri: str
) -> None:
    days = sessions_between(dt.date(2002, 1, 2), dt.date(2004, 9, 30))
    close = 100 + np.cumsum(np.sin(np.arange(len(days)) / 9.0))
    bars = pd.DataFrame(
        {
            "date": days.strftime("%m/%d/%Y"),  # US style: detected, as the column fits no other
            "open": close - 0.3,
            "high": close + 1.0,
            "low": close - 1.0,
            "close": close,
            "volume": 1_000_000,
        }
    )
    (tmp_path / "market").mkdir()
    bars.to_csv(tmp_path / "market" / "TSLA.csv", index=False)
    env = _child_env(
        TRADING_START_DATE="2004-08-19",
        MARKET_DATA_SOURCE="csv",
        MARKET_DATA_DIR=str(tmp_path / "market"),
        TRADING_DATA_DIR=str(tmp_path / "data"),
        DAGSTER_HOME=str(tmp_path / "home"),
        MLFLOW_TRACKING_URI=shared_mlflow_uri,
    )
    env.pop("DATABASE_URL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "trading_assets.cli", "run", "--date", "2004-08-19", "--symbols",
         "TSLA"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "== TSLA 2004-08-19" in proc.stdout and " ok" in proc.stdout
    assert "  signal: " in proc.stdout
