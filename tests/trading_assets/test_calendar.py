"""The exchange calendar reaches back as far as it is asked, and only costs that when asked."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from exchange_calendars.exchange_calendar_xnys import XNYSExchangeCalendar

from trading_assets.calendar import (
    EARLIEST_DAY,
    calendar_bounds,
    is_trading_day,
    previous_session,
    sessions_between,
    sessions_ending_at,
    weekday_holidays,
)

REPO = Path(__file__).resolve().parents[2]


def test_the_earliest_day_is_where_pandas_timestamps_begin() -> None:
    # exchange_calendars declares no lower bound for XNYS; pandas' nanosecond range is the limit.
    assert XNYSExchangeCalendar.bound_min() is None
    assert dt.date(1677, 9, 22) == EARLIEST_DAY
    assert calendar_bounds()[0] == EARLIEST_DAY


def test_sessions_before_the_default_twenty_years() -> None:
    june_2004 = {d.date() for d in sessions_between(dt.date(2004, 6, 1), dt.date(2004, 6, 30))}
    assert dt.date(2004, 6, 10) in june_2004
    assert dt.date(2004, 6, 11) not in june_2004  # Reagan's funeral: an unplanned closure
    assert not is_trading_day(dt.date(2004, 6, 11))
    assert previous_session(dt.date(2004, 6, 14)) == dt.date(2004, 6, 10)
    assert weekday_holidays(dt.date(2001, 9, 10), dt.date(2001, 9, 17)) == [
        dt.date(2001, 9, d) for d in (11, 12, 13, 14)
    ]


def test_the_longest_history_is_all_there() -> None:
    sessions = sessions_ending_at(dt.date(2024, 1, 2), 5000)
    assert len(sessions) == 5000
    assert sessions[-1] == pd.Timestamp("2024-01-02")
    assert sessions.is_monotonic_increasing and sessions[0].year == 2004
    assert pd.Timestamp("2004-06-11") not in sessions


def test_a_day_before_the_earliest_is_refused_with_the_limit() -> None:
    with pytest.raises(ValueError, match="before 1677-09-22, the first day the XNYS calendar"):
        is_trading_day(dt.date(1600, 1, 2))
    assert len(sessions_between(dt.date(1600, 1, 1), dt.date(1677, 9, 30))) == 7


_COUNT_BUILDS = """
import exchange_calendars as xcals
builds = []
build = xcals.get_calendar
xcals.get_calendar = lambda *a, **k: builds.append(k.get("start")) or build(*a, **k)
import trading_assets.partitions
from trading_assets.calendar import sessions_ending_at
from trading_assets.partitions import first_partition_day
sessions_ending_at(first_partition_day(), 520)
print(builds)
"""


@pytest.mark.integration
@pytest.mark.parametrize(
    ("start", "builds"),
    [(None, "[None]"), ("2004-08-19", "[Timestamp('2001-01-01 00:00:00')]")],
)
def test_loading_builds_one_calendar_and_the_default_one_by_default(
    start: str | None, builds: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TRADING_START_DATE"}
    if start:
        env["TRADING_START_DATE"] = start
    proc = subprocess.run(
        [sys.executable, "-c", _COUNT_BUILDS], cwd=REPO, env=env, capture_output=True,
        text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    # The default MARKET_HISTORY_DAYS before the first partition needs no second build.
    assert proc.stdout.strip() == builds
