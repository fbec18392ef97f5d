"""Daily bars from a folder of per-symbol files (<SYMBOL>.csv or <SYMBOL>.parquet), validated.

Every problem raises ``MarketDataError`` saying what is wrong with which file and how to fix it.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd

from trading_assets.models import BAR_COLUMNS, MarketData

SUFFIXES = (".csv", ".parquet")
REQUIRED_COLUMNS = ("date", *BAR_COLUMNS)
EXPECTED_FILES = "one file per symbol, e.g. TSLA.csv with columns date,open,high,low,close,volume"
PRICE_COLUMNS = ("open", "high", "low", "close")
ISO_DATE = "%Y-%m-%d"
# Tried after ISO; a column must parse under one of them in every row (never guessed per row).
OTHER_DATE_FORMATS = (
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%Y/%m/%d",
    "%Y%m%d",
    "%d.%m.%Y",
    "%d-%m-%Y",
    "%m-%d-%Y",
    "%d-%b-%Y",
    "%d %b %Y",
    "%b %d, %Y",
)
# ISO dates, optionally with a time; an offset after the time is dropped so mixed offsets (EST and
# EDT in one file) parse, and the wall-clock date is the session day either way.
_ISO_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?)(?:\s*(?:Z|[+-]\d{2}:?\d{2}))?$"
)
_SHOWN_ROWS = 5
# Formats that fail on one of the first rows cannot fit the column; only the rest parse it all.
_SAMPLE_ROWS = 200


class MarketDataError(ValueError):
    """Market data that cannot be loaded or used; the message names the problem and the fix."""


def _data_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in SUFFIXES)


def _find_file(folder: Path, symbol: str) -> Path:
    if not folder.is_dir():
        raise MarketDataError(
            f"market data folder {folder} does not exist (or is not a folder): create it and "
            f"add {EXPECTED_FILES}, or point MARKET_DATA_DIR at the folder that has them"
        )
    files = _data_files(folder)
    if not files:
        raise MarketDataError(
            f"market data folder {folder} has no .csv or .parquet files: add {EXPECTED_FILES}"
        )
    wanted = symbol.strip().upper()
    matches = [folder / f"{wanted}{suffix}" for suffix in SUFFIXES]
    present = [p for p in matches if p in files]
    if len(present) > 1:
        raise MarketDataError(
            f"both {present[0].name} and {present[1].name} are in {folder}: it is ambiguous "
            "which one holds the bars; remove or rename one of them"
        )
    if not present:
        available = sorted({p.stem for p in files})
        hint = ""
        near = [p.name for p in files if p.stem.upper() == wanted]
        if near:
            hint = f" ({', '.join(near)} differs only in case: rename it to {wanted}.csv/.parquet)"
        raise MarketDataError(
            f"no market data file for {wanted} in {folder}: expected {wanted}.csv or "
            f"{wanted}.parquet{hint}; symbols available there: {', '.join(available)}"
        )
    return present[0]


def _read(path: Path) -> pd.DataFrame:
    try:
        if path.suffix == ".csv":
            # Dates stay text, so 20250602 or a column with gaps is not turned into numbers.
            header = pd.read_csv(path, nrows=0).columns
            as_text = {c: str for c in header if str(c).strip().lower() == "date"}
            return pd.read_csv(path, dtype=as_text)
        frame = pd.read_parquet(path)
    except (ValueError, OSError) as exc:  # parser, encoding and pyarrow errors all land here
        raise MarketDataError(
            f"cannot read {path}: {exc}. Fix or re-export the file ({EXPECTED_FILES})"
        ) from exc
    # Parquet files written from a date-indexed frame keep the dates in the index.
    has_date_column = any(str(c).strip().lower() == "date" for c in frame.columns)
    index_name = str(frame.index.name or "").strip().lower()
    if not has_date_column and (index_name == "date" or isinstance(frame.index, pd.DatetimeIndex)):
        frame = frame.reset_index(names="date")
    return frame


def _normalise_columns(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    names = [str(c).strip().lower() for c in frame.columns]
    clashes = sorted({n for n in names if n in REQUIRED_COLUMNS and names.count(n) > 1})
    if clashes:
        raise MarketDataError(
            f"{path} has several columns named {', '.join(clashes)} (column names are "
            "case-insensitive): keep one of each"
        )
    frame = frame.set_axis(names, axis=1)
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise MarketDataError(
            f"{path} lacks the column(s) {', '.join(missing)} (it has "
            f"{', '.join(map(str, frame.columns)) or 'none'}): the file needs columns "
            "date,open,high,low,close,volume"
        )
    return frame.loc[:, list(REQUIRED_COLUMNS)]


def _row_labels(path: Path, count: int) -> list[str]:
    """How to point at each data row: its line in a CSV file, else its row number."""
    if path.suffix == ".csv":
        lines: list[int] = []
        with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
            reader = csv.reader(handle)
            last_line = 0
            for record in reader:
                first_line, last_line = last_line + 1, reader.line_num
                if record and (len(record) > 1 or record[0].strip()):  # pandas skips blank lines
                    lines.append(first_line)
        if len(lines) == count + 1:  # the header, then one record per row
            return [f"line {n}" for n in lines[1:]]
    return [f"row {n}" for n in range(1, count + 1)]


def _listed(text: pd.Series, bad: np.ndarray, path: Path) -> str:
    positions = np.flatnonzero(bad)
    labels = _row_labels(path, len(text))
    shown = ", ".join(
        f"{labels[p]} ({'empty' if pd.isna(text.iloc[p]) else repr(text.iloc[p])})"
        for p in positions[:_SHOWN_ROWS]
    )
    more = len(positions) - _SHOWN_ROWS
    return shown + (f" and {more} more" if more > 0 else "")


def _parse_as(text: pd.Series, fmt: str) -> pd.Series:
    dates = pd.to_datetime(text, format=fmt, errors="coerce")
    if fmt == ISO_DATE and dates.isna().any():  # timestamps, perhaps with UTC offsets
        iso = text.str.extract(_ISO_RE, expand=False)
        dates = pd.to_datetime(iso, format="ISO8601", errors="coerce")
    return dates


def _detect_format(text: pd.Series, path: Path) -> pd.Series:
    """The dates under the one format every row fits; refuses an ambiguous or mixed column."""
    iso = _parse_as(text, ISO_DATE)
    if iso.notna().all():
        return iso
    sample = text.iloc[:_SAMPLE_ROWS]
    fits: dict[str, pd.Series] = {}
    for fmt in OTHER_DATE_FORMATS:
        if _parse_as(sample, fmt).isna().any():
            continue
        dates = _parse_as(text, fmt)
        # A second format that reads every row as the same dates is no real alternative.
        if dates.notna().all() and not any((dates == d).all() for d in fits.values()):
            fits[fmt] = dates
    if len(fits) == 1:
        return next(iter(fits.values()))
    if fits:
        (_, a), (second, b) = list(fits.items())[:2]
        row = int(np.argmax((a != b).to_numpy()))
        raise MarketDataError(
            f"{path}: the date column is ambiguous: every date fits {' and '.join(fits)} "
            f"({_row_labels(path, len(text))[row]}, {text.iloc[row]!r}, is {a.iloc[row].date()} "
            f"or {b.iloc[row].date()}): set MARKET_DATA_DATE_FORMAT to the format the file "
            f"uses, e.g. MARKET_DATA_DATE_FORMAT={second}"
        )
    parsed = {ISO_DATE: iso} | {fmt: _parse_as(text, fmt) for fmt in OTHER_DATE_FORMATS}
    counts = {fmt: int(dates.notna().sum()) for fmt, dates in parsed.items()}
    most = max(counts.values())
    if most == 0:
        raise MarketDataError(
            f"{path}: the date column holds no date in a format this loader knows: "
            f"{_listed(text, np.ones(len(text), dtype=bool), path)}; write dates as "
            "YYYY-MM-DD, or set MARKET_DATA_DATE_FORMAT to the file's format (e.g. %d/%m/%Y)"
        )
    best = [fmt for fmt, n in counts.items() if n == most]
    bad = parsed[best[0]].isna().to_numpy()
    raise MarketDataError(
        f"{path}: {int(bad.sum())} of {len(text)} dates do not fit {' or '.join(best)}, the "
        f"format most rows use: {_listed(text, bad, path)}; fix those rows (or, if the file "
        "uses another format, set MARKET_DATA_DATE_FORMAT to it)"
    )


def _parse_dates(raw: pd.Series, path: Path, date_format: str | None) -> pd.DatetimeIndex:
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):  # Parquet timestamps need no parsing
        dates = raw
        if dates.isna().any():
            raise MarketDataError(
                f"{path}: the date is missing in {_listed(raw, dates.isna().to_numpy(), path)}: "
                "every bar needs its date"
            )
    else:
        text = raw.astype("string").str.strip().replace("", pd.NA)
        if len(text) == 0:
            dates = pd.Series([], dtype="datetime64[ns]")
        elif date_format:
            try:
                dates = pd.to_datetime(text, format=date_format, errors="coerce")
            except ValueError as exc:  # a bad directive, or timezones that do not mix
                raise MarketDataError(
                    f"{path}: cannot read dates with MARKET_DATA_DATE_FORMAT={date_format}: "
                    f"{exc}; use strftime codes, e.g. %d/%m/%Y"
                ) from exc
            bad = dates.isna().to_numpy()
            if bad.any():
                raise MarketDataError(
                    f"{path}: {int(bad.sum())} of {len(text)} dates do not match "
                    f"MARKET_DATA_DATE_FORMAT={date_format}: {_listed(text, bad, path)}; fix "
                    "those rows, or set MARKET_DATA_DATE_FORMAT to the format the file uses"
                )
        else:
            dates = _detect_format(text, path)
    index = pd.DatetimeIndex(dates)
    if index.tz is not None:
        index = index.tz_localize(None)
    # Daily bars: a timestamp such as 16:00 on the session day still means that session.
    return index.normalize().as_unit("ns").rename("date")


def _first_bad_date(frame: pd.DataFrame, bad: pd.Series) -> str:
    return str(frame.index[int(np.argmax(bad.to_numpy()))].date())


def _check_values(raw: pd.DataFrame, path: Path) -> pd.DataFrame:
    numeric = raw.apply(pd.to_numeric, errors="coerce").astype(float)
    for column in BAR_COLUMNS:
        bad = numeric[column].isna()
        if bad.any():
            pos = int(np.argmax(bad.to_numpy()))
            value = raw[column].iloc[pos]
            shown = "missing" if pd.isna(value) else f"{value!r}, not a number"
            raise MarketDataError(
                f"{path}: {column} on {raw.index[pos].date()} is {shown}: every bar needs "
                "numeric open, high, low, close and volume"
            )
    for column in PRICE_COLUMNS:
        bad = numeric[column] <= 0
        if bad.any():
            raise MarketDataError(
                f"{path}: {column} on {_first_bad_date(numeric, bad)} is not positive: "
                "prices must be greater than 0"
            )
    bad = numeric["volume"] < 0
    if bad.any():
        raise MarketDataError(
            f"{path}: volume on {_first_bad_date(numeric, bad)} is negative: "
            "volume must be 0 or more"
        )
    return numeric


def _check_ohlc(bars: pd.DataFrame, path: Path) -> None:
    body_low = bars[["open", "close"]].min(axis=1)
    body_high = bars[["open", "close"]].max(axis=1)
    bad = (bars["low"] > body_low) | (bars["high"] < body_high)
    if bad.any():
        row = bars.iloc[int(np.argmax(bad.to_numpy()))]
        raise MarketDataError(
            f"{path}: the bar on {row.name.date()} is inconsistent (open {row['open']}, high "
            f"{row['high']}, low {row['low']}, close {row['close']}): low must be <= open and "
            "close, high must be >= open and close; check for swapped columns"
        )


def _check_dates(index: pd.DatetimeIndex, path: Path) -> None:
    duplicated = index[index.duplicated()].unique()
    if len(duplicated):
        shown = ", ".join(str(d.date()) for d in duplicated[:5])
        raise MarketDataError(
            f"{path} has more than one bar for {shown}: keep one bar per trading day"
        )


def _validated_bars(path: Path, date_format: str | None) -> pd.DataFrame:
    raw = _normalise_columns(_read(path), path)
    index = _parse_dates(raw["date"], path, date_format)
    raw = raw.drop(columns="date").set_axis(index, axis=0)
    _check_dates(index, path)
    bars = _check_values(raw, path)
    _check_ohlc(bars, path)
    bars["volume"] = bars["volume"].round().astype(np.int64)
    # Row order in a file carries no meaning; bars are ascending by date from here on.
    return bars.sort_index()


def load_folder_bars(
    folder: Path, symbol: str, as_of: dt.date, history: int, date_format: str | None = None
) -> MarketData:
    """The last ``history`` bars on or before ``as_of`` from ``<folder>/<SYMBOL>.csv|.parquet``.

    The whole file is validated, including bars after ``as_of``, so a bad file fails on every
    date rather than only on some. Text dates are read with ``date_format`` (strftime codes), or
    in the one known format every row fits.
    """
    if history < 1:
        raise MarketDataError(f"history must be at least 1 trading day, got {history}")
    path = _find_file(Path(folder), symbol)
    bars = _validated_bars(path, date_format)
    kept = bars.loc[bars.index <= pd.Timestamp(as_of)]
    if kept.empty:
        raise MarketDataError(
            f"{path} has no bars on or before {as_of} (its first bar is "
            f"{bars.index[0].date() if len(bars) else 'missing: the file is empty'}): pick a "
            "later date or add earlier history to the file"
        )
    return MarketData(
        symbol=symbol,
        as_of=as_of,
        source="csv" if path.suffix == ".csv" else "parquet",
        source_detail=str(path.resolve()),
        bars=kept.iloc[-history:],
    )
