"""The NYSE calendar (exchange_calendars' XNYS): sessions, holidays, the latest closed day."""

from __future__ import annotations

import datetime as dt
import warnings
from functools import lru_cache

import exchange_calendars as xcals
import pandas as pd

# exchange_calendars 4.x reads DatetimeIndex.values, which pandas 3.1 flags for pandas 4; the
# warning says nothing a user can act on and would otherwise land in every run's logs.
warnings.filterwarnings("ignore", category=pd.errors.Pandas4Warning, module="exchange_calendars")

EXCHANGE = "XNYS"
TIMEZONE = "America/New_York"


@lru_cache(maxsize=1)
def _calendar() -> xcals.ExchangeCalendar:
    return xcals.get_calendar(EXCHANGE)


def calendar_bounds() -> tuple[dt.date, dt.date]:
    cal = _calendar()
    return cal.first_session.date(), cal.last_session.date()


def _check_in_bounds(day: dt.date) -> None:
    first, last = calendar_bounds()
    if not first <= day <= last:
        raise ValueError(
            f"{day} is outside the {EXCHANGE} calendar ({first} to {last}); "
            "upgrade exchange-calendars for later dates"
        )


def is_trading_day(day: dt.date) -> bool:
    _check_in_bounds(day)
    return bool(_calendar().is_session(pd.Timestamp(day)))


def sessions_between(start: dt.date, end: dt.date) -> pd.DatetimeIndex:
    """Trading sessions from start to end inclusive, tz-naive midnight timestamps."""
    first, last = calendar_bounds()
    start, end = max(start, first), min(end, last)
    if start > end:
        return pd.DatetimeIndex([], name="date")
    sessions = _calendar().sessions_in_range(pd.Timestamp(start), pd.Timestamp(end))
    return pd.DatetimeIndex(sessions, name="date")


def sessions_ending_at(as_of: dt.date, count: int) -> pd.DatetimeIndex:
    """The ``count`` trading sessions ending at ``as_of`` (inclusive if it is a session)."""
    _check_in_bounds(as_of)
    cal = _calendar()
    end = cal.date_to_session(pd.Timestamp(as_of), direction="previous")
    end_idx = cal.sessions.get_loc(end)
    start_idx = max(0, end_idx - count + 1)
    return pd.DatetimeIndex(cal.sessions[start_idx : end_idx + 1], name="date")


def weekday_holidays(start: dt.date, end: dt.date) -> list[dt.date]:
    """Weekdays between start and end on which the exchange is closed."""
    first, last = calendar_bounds()
    start, end = max(start, first), min(end, last)
    weekdays = pd.bdate_range(start, end)
    sessions = set(sessions_between(start, end))
    return [d.date() for d in weekdays if d not in sessions]


def latest_completed_session(now: dt.datetime) -> dt.date:
    """The most recent session whose close is at or before ``now`` (an aware datetime)."""
    if now.tzinfo is None:
        raise ValueError("latest_completed_session needs a timezone-aware datetime")
    cal = _calendar()
    ts = pd.Timestamp(now).tz_convert("UTC")
    session = cal.minute_to_session(ts, direction="previous")
    if cal.session_close(session) > ts:
        session = cal.previous_session(session)
    return session.date()


def previous_session(day: dt.date) -> dt.date:
    """The last session strictly before ``day``."""
    _check_in_bounds(day)
    return _calendar().date_to_session(
        pd.Timestamp(day) - pd.Timedelta(days=1), direction="previous"
    ).date()


def check_closed_session(day: dt.date, now: dt.datetime) -> None:
    """Raise unless ``day`` is a trading session whose close has passed at ``now``."""
    if not is_trading_day(day):
        raise ValueError(
            f"{day} ({day:%A}) is not an NYSE trading day: pick a weekday that is not an "
            f"exchange holiday, e.g. {previous_session(day)}"
        )
    latest = latest_completed_session(now)
    if day > latest:
        raise ValueError(
            f"{day} has not closed yet (the latest closed trading day is {latest}): "
            "bars for it would be incomplete"
        )
