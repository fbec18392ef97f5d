"""The NYSE calendar (exchange_calendars' XNYS): sessions, holidays, the latest closed day.

It covers exchange_calendars' default 20 years and reaches further back when a day asks for it.
"""

from __future__ import annotations

import datetime as dt
import threading
import warnings

import exchange_calendars as xcals
import pandas as pd
from exchange_calendars.exchange_calendar_xnys import XNYSExchangeCalendar

# exchange_calendars 4.x reads DatetimeIndex.values, which pandas 3.1 flags for pandas 4; the
# warning says nothing a user can act on and would otherwise land in every run's logs.
warnings.filterwarnings("ignore", category=pd.errors.Pandas4Warning, module="exchange_calendars")

EXCHANGE = "XNYS"
TIMEZONE = "America/New_York"
# The regular close, New York time: a day's date partition opens then, after an early close too.
REGULAR_CLOSE = dt.time(16)

# exchange_calendars sets no lower bound for XNYS (bound_min() is None): the calendar can be built
# from the first midnight pandas' nanosecond timestamps can hold. Only before that is there none.
_BOUND_MIN = XNYSExchangeCalendar.bound_min()
_TIMESTAMP_MIN = pd.Timestamp.min.ceil("D")
EARLIEST_DAY: dt.date = max(_BOUND_MIN or _TIMESTAMP_MIN, _TIMESTAMP_MIN).date()

# exchange_calendars' default start, 20 years before today: the cheap calendar most runs need.
_DEFAULT_START: dt.date = XNYSExchangeCalendar.default_start().date()
# The first session is within days of a calendar's start (a weekend, a holiday, a closure).
_FIRST_SESSION_SLACK = dt.timedelta(days=10)
# A calendar built for an earlier day also covers this many years before it, so the default
# MARKET_HISTORY_DAYS (520 sessions, about two years) before the first partition needs no rebuild.
_REACH_MARGIN_YEARS = 3
# Calendar days per session, with room to spare: 7 days hold 5 weekdays, less the holidays.
_DAYS_PER_SESSION = 1.5

_lock = threading.Lock()
# (the start it was built from, None for the default; the calendar)
_built: tuple[dt.date | None, xcals.ExchangeCalendar] | None = None


def _covers(built: tuple[dt.date | None, xcals.ExchangeCalendar], day: dt.date | None) -> bool:
    start, cal = built
    return day is None or day >= cal.first_session.date() or start == EARLIEST_DAY


def _start_for(day: dt.date | None) -> dt.date | None:
    if day is None or day >= _DEFAULT_START + _FIRST_SESSION_SLACK:
        return None
    return max(EARLIEST_DAY, dt.date(day.year - _REACH_MARGIN_YEARS, 1, 1))


def _calendar(reaching: dt.date | None = None) -> xcals.ExchangeCalendar:
    """The calendar, rebuilt from further back when ``reaching`` is before its first session.

    The default (20 years) is what every code-location load pays for; a longer one is built only
    when TRADING_START_DATE or a request for history reaches further back, and then kept.
    """
    global _built
    built = _built
    if built is None or not _covers(built, reaching):
        with _lock:
            built = _built
            if built is None or not _covers(built, reaching):
                start = _start_for(reaching)
                cal = xcals.get_calendar(
                    EXCHANGE, start=None if start is None else pd.Timestamp(start)
                )
                built = _built = (start, cal)
    return built[1]


def _back(day: dt.date, days: int) -> dt.date:
    return max(EARLIEST_DAY, day - dt.timedelta(days=days))


def extend_back_to(day: dt.date) -> None:
    """Have the calendar cover ``day`` and the default history before it, from now on.

    Called where the partitions are built, so the first run does not rebuild the calendar.
    """
    _calendar(max(day, EARLIEST_DAY))


def calendar_bounds() -> tuple[dt.date, dt.date]:
    """The first and last day the calendar can answer for (it reaches back as it is asked)."""
    return EARLIEST_DAY, _calendar().last_session.date()


def _check_in_bounds(day: dt.date) -> None:
    if day < EARLIEST_DAY:
        raise ValueError(
            f"{day} is before {EARLIEST_DAY}, the first day the {EXCHANGE} calendar can hold: "
            "pick a later date"
        )
    last = _calendar(day).last_session.date()
    if day > last:
        raise ValueError(
            f"{day} is outside the {EXCHANGE} calendar ({EARLIEST_DAY} to {last}); "
            "upgrade exchange-calendars for later dates"
        )


def is_trading_day(day: dt.date) -> bool:
    _check_in_bounds(day)
    return bool(_calendar(day).is_session(pd.Timestamp(day)))


def sessions_between(start: dt.date, end: dt.date) -> pd.DatetimeIndex:
    """Trading sessions from start to end inclusive, tz-naive midnight timestamps."""
    start = max(start, EARLIEST_DAY)
    cal = _calendar(start)
    end = min(end, cal.last_session.date())
    if start > end:
        return pd.DatetimeIndex([], name="date")
    sessions = cal.sessions_in_range(pd.Timestamp(start), pd.Timestamp(end))
    return pd.DatetimeIndex(sessions, name="date")


def sessions_ending_at(as_of: dt.date, count: int) -> pd.DatetimeIndex:
    """The ``count`` trading sessions ending at ``as_of`` (inclusive if it is a session)."""
    _check_in_bounds(as_of)
    cal = _calendar(_back(as_of, int(count * _DAYS_PER_SESSION) + 14))
    end = cal.date_to_session(pd.Timestamp(as_of), direction="previous")
    end_idx = cal.sessions.get_loc(end)
    start_idx = max(0, end_idx - count + 1)
    return pd.DatetimeIndex(cal.sessions[start_idx : end_idx + 1], name="date")


def weekday_holidays(start: dt.date, end: dt.date) -> list[dt.date]:
    """Weekdays between start and end on which the exchange is closed."""
    start = max(start, EARLIEST_DAY)
    end = min(end, _calendar(start).last_session.date())
    weekdays = pd.bdate_range(start, end)
    sessions = set(sessions_between(start, end))
    return [d.date() for d in weekdays if d not in sessions]


def _completes_at(cal: xcals.ExchangeCalendar, session: pd.Timestamp) -> pd.Timestamp:
    """When a session counts as closed: its close, and not before REGULAR_CLOSE, when its date
    partition opens (an early close at 13:00 counts from 16:00)."""
    regular = pd.Timestamp(dt.datetime.combine(session.date(), REGULAR_CLOSE), tz=TIMEZONE)
    return max(cal.session_close(session), regular.tz_convert("UTC"))


def latest_completed_session(now: dt.datetime) -> dt.date:
    """The most recent session that has closed at ``now`` (an aware datetime): its close is past,
    and so is REGULAR_CLOSE on its day, so it is a date partition already."""
    if now.tzinfo is None:
        raise ValueError("latest_completed_session needs a timezone-aware datetime")
    ts = pd.Timestamp(now).tz_convert("UTC")
    cal = _calendar(_back(ts.date(), 14))
    session = cal.minute_to_session(ts, direction="previous")
    if _completes_at(cal, session) > ts:
        session = cal.previous_session(session)
    return session.date()


def previous_session(day: dt.date) -> dt.date:
    """The last session strictly before ``day``."""
    _check_in_bounds(day)
    return _calendar(_back(day, 14)).date_to_session(
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
        closes = _completes_at(_calendar(day), pd.Timestamp(day))
        raise ValueError(
            f"{day} has not closed yet: run it from {closes.tz_convert(TIMEZONE):%H:%M} New York "
            f"time ({closes:%H:%M} UTC) that day; the latest closed trading day is {latest}"
        )
