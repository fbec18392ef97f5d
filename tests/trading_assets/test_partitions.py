import datetime as dt

import dagster as dg
import pytest

from trading_assets.calendar import (
    check_closed_session,
    is_trading_day,
    latest_completed_session,
    sessions_between,
    weekday_holidays,
)
from trading_assets.partitions import (
    SymbolError,
    normalize_symbol,
    parse_symbols,
    partition_key_for,
    symbol_and_date,
    symbol_day,
    trading_day,
)

NY = dt.timezone(dt.timedelta(hours=-5))  # EST, enough for these winter timestamps


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
