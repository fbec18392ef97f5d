"""The symbol x trading-day partitions every asset shares, and the symbol rules for their keys."""

from __future__ import annotations

import datetime as dt
import re

import dagster as dg

from trading_assets.calendar import (
    EARLIEST_DAY,
    EXCHANGE,
    REGULAR_CLOSE,
    TIMEZONE,
    calendar_bounds,
    extend_back_to,
    weekday_holidays,
)
from trading_assets.errors import SettingError

DEFAULT_START_DATE = "2024-01-02"
DEFAULT_SYMBOLS = "TSLA,NVDA"
SYMBOL_DIMENSION = "symbol"
DATE_DIMENSION = "date"

# Tickers as brokers spell them: letters first, then letters, digits, '.', '-' (BRK.B, RDS-A).
_SYMBOL_RE = re.compile(r"^[A-Z][A-Z0-9.\-]{0,11}$")


class SymbolError(ValueError):
    """A symbol that cannot be used as a ticker or as a partition key."""


def normalize_symbol(raw: str) -> str:
    symbol = raw.strip().upper()
    if not symbol:
        raise SymbolError(
            "empty symbol: list tickers separated by commas, e.g. STOCK_SYMBOLS=TSLA,NVDA"
        )
    if not _SYMBOL_RE.match(symbol):
        raise SymbolError(
            f"{raw!r} is not a ticker symbol: use 1-12 letters, digits, '.' or '-', starting "
            "with a letter (e.g. TSLA, BRK.B); '|', ',', brackets and spaces cannot be part of "
            "a partition key"
        )
    return symbol


def parse_symbols(raw: str) -> list[str]:
    """Comma-separated tickers -> normalised, de-duplicated, in the given order."""
    symbols: list[str] = []
    for part in raw.split(","):
        symbol = normalize_symbol(part)
        if symbol not in symbols:
            symbols.append(symbol)
    return symbols


def _start_day(start: str) -> dt.date:
    try:
        start_day = dt.date.fromisoformat(start.strip())
    except ValueError:
        raise SettingError(
            f"TRADING_START_DATE={start!r} is not a date: use YYYY-MM-DD, e.g. 2024-01-02"
        ) from None
    if start_day < EARLIEST_DAY:
        raise SettingError(
            f"TRADING_START_DATE={start.strip()} is before {EARLIEST_DAY}, the earliest date the "
            f"{EXCHANGE} calendar has: use {EARLIEST_DAY} or later, e.g. 2004-08-19"
        )
    return start_day


def _last_day_for(start_day: dt.date, start: str) -> dt.date:
    _, last = calendar_bounds()
    if start_day > last:
        raise SettingError(
            f"TRADING_START_DATE={start.strip()} is after {last}, the last date the {EXCHANGE} "
            "calendar has: use an earlier date, e.g. 2024-01-02"
        )
    return last


def parse_start_date(start: str) -> dt.date:
    """TRADING_START_DATE as a day the exchange calendar has; a one-line SettingError if not."""
    start_day = _start_day(start)
    _last_day_for(start_day, start)
    return start_day


def _trading_day_partitions(start: str) -> dg.TimeWindowPartitionsDefinition:
    start_day = _start_day(start)
    # Built once here, from far enough back for the partitions and the history before them.
    extend_back_to(start_day)
    last = _last_day_for(start_day, start)
    # A day's window starts at its close and end_offset=1 adds the window holding now, so the last
    # key ("Latest" in the UI) is the latest closed session: the UI rebuilds the partitions from
    # cron, offset and exclusions, so an end computed at load would go stale. Early closes count
    # from 16:00 too (latest_completed_session). On a holiday's evening Dagster skips the excluded
    # window and offers the next session, which market_data refuses in one line until it closes.
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule=f"{REGULAR_CLOSE.minute} {REGULAR_CLOSE.hour} * * 1-5",
        start=start_day.isoformat(),
        fmt="%Y-%m-%d",
        timezone=TIMEZONE,
        end_offset=1,
        exclusions=[
            dt.datetime.combine(d, REGULAR_CLOSE) for d in weekday_holidays(start_day, last)
        ],
    )


def _start_date() -> str:
    # Partitions are structure, not a resource: they must be known when the code location loads.
    return (dg.EnvVar("TRADING_START_DATE").get_value() or "").strip() or DEFAULT_START_DATE


def _load_trading_day() -> tuple[dg.TimeWindowPartitionsDefinition, SettingError | None]:
    try:
        return _trading_day_partitions(_start_date()), None
    except SettingError as exc:
        # Importing must not fail with a traceback in every command (`config` included): the
        # default start stands in so the assets can be defined, and every entry point reports
        # the error in one line before anything runs (check_settings, first_partition_day).
        return _trading_day_partitions(DEFAULT_START_DATE), exc


trading_day, _START_DATE_ERROR = _load_trading_day()
symbols = dg.DynamicPartitionsDefinition(name=SYMBOL_DIMENSION)
symbol_day = dg.MultiPartitionsDefinition({DATE_DIMENSION: trading_day, SYMBOL_DIMENSION: symbols})


def start_date_error() -> SettingError | None:
    """Why TRADING_START_DATE, as the code loaded it, cannot work (the partitions then stand in
    with the default start and must not be used), or None."""
    return None if _START_DATE_ERROR is None else SettingError(str(_START_DATE_ERROR))


def first_partition_day() -> dt.date:
    """The first day of the `date` dimension (TRADING_START_DATE, when the code loaded)."""
    error = start_date_error()
    if error is not None:
        raise error
    start = trading_day.start
    return start.date() if isinstance(start, dt.datetime) else dt.date.fromisoformat(str(start))


def partition_key_for(symbol: str, day: dt.date) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({DATE_DIMENSION: day.isoformat(), SYMBOL_DIMENSION: symbol})


def symbol_and_date(key: dg.MultiPartitionKey | str) -> tuple[str, dt.date]:
    """Split a symbol-day partition key, whatever form Dagster hands it over in."""
    if not isinstance(key, dg.MultiPartitionKey):
        parts = dict(zip((DATE_DIMENSION, SYMBOL_DIMENSION), str(key).split("|"), strict=True))
    else:
        parts = key.keys_by_dimension
    return parts[SYMBOL_DIMENSION], dt.date.fromisoformat(parts[DATE_DIMENSION])


def current_partition(context: dg.AssetExecutionContext) -> tuple[str, dt.date]:
    """The (symbol, trading day) an asset is materializing, with the symbol checked."""
    symbol, day = symbol_and_date(context.partition_key)
    if normalize_symbol(symbol) != symbol:
        raise SymbolError(
            f"partition symbol {symbol!r} is not normalised: add it as {normalize_symbol(symbol)}"
        )
    return symbol, day
