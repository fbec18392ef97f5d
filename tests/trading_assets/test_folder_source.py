"""Loading bars from a folder of CSV/Parquet files, and every error a user can run into."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from resources.ibkr import IbkrResource
from resources.market_data import MarketDataResource
from trading_assets.environment import resources_from_environment
from trading_assets.market_data.folder_source import (
    OTHER_DATE_FORMATS,
    MarketDataError,
    load_folder_bars,
)

DAY = dt.date(2025, 6, 4)


def _frame(days: int = 10, start: str = "2025-05-22") -> pd.DataFrame:
    dates = pd.bdate_range(start, periods=days)
    close = 100 + np.arange(days, dtype=float)
    return pd.DataFrame(
        {
            "date": dates.strftime("%Y-%m-%d"),
            "open": close - 0.5,
            "high": close + 1.0,
            "low": close - 1.0,
            "close": close,
            "volume": np.arange(days) * 1000 + 5000,
        }
    )


def _write_csv(folder: Path, name: str, frame: pd.DataFrame) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    frame.to_csv(path, index=False)
    return path


def _load(
    folder: Path,
    symbol: str = "TSLA",
    as_of: dt.date = DAY,
    history: int = 100,
    date_format: str | None = None,
):
    # pandas' "could not infer format" / dayfirst warnings must never come back.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return load_folder_bars(folder, symbol, as_of, history, date_format)


def test_market_data_error_is_a_value_error() -> None:
    assert issubclass(MarketDataError, ValueError)


def test_csv_round_trip(tmp_path: Path) -> None:
    frame = _frame()
    path = _write_csv(tmp_path, "TSLA.csv", frame)
    data = _load(tmp_path)
    assert data.source == "csv"
    assert data.source_detail == str(path.resolve())
    assert data.symbol == "TSLA" and data.as_of == DAY
    bars = data.bars
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]
    assert bars.index.name == "date"
    assert bars["volume"].dtype == np.int64
    assert bars.index[-1] == pd.Timestamp(DAY)
    # 2025-05-22 .. 2025-06-04 are the first 10 business days from the start.
    expected = frame.set_index(pd.DatetimeIndex(pd.to_datetime(frame["date"]), name="date"))
    expected = expected.drop(columns="date").loc[:"2025-06-04"]
    np.testing.assert_allclose(bars.to_numpy(dtype=float), expected.to_numpy(dtype=float))


def test_parquet_round_trip_with_dates_in_the_index(tmp_path: Path) -> None:
    frame = _frame()
    indexed = frame.assign(date=pd.to_datetime(frame["date"])).set_index("date")
    path = tmp_path / "NVDA.parquet"
    indexed.to_parquet(path)
    data = _load(tmp_path, "NVDA")
    assert data.source == "parquet"
    assert data.source_detail == str(path.resolve())
    np.testing.assert_allclose(data.bars["close"].to_numpy(), indexed.loc[:"2025-06-04", "close"])


def test_parquet_with_a_date_column_and_odd_case_and_extra_columns(tmp_path: Path) -> None:
    frame = _frame().rename(columns={"date": "Date", "close": "CLOSE", "volume": "Volume"})
    frame["adj close"] = 1.0
    frame.to_parquet(tmp_path / "TSLA.parquet", index=False)
    data = _load(tmp_path)
    assert list(data.bars.columns) == ["open", "high", "low", "close", "volume"]
    assert data.bars["close"].iloc[-1] == 109.0


def test_bars_after_as_of_are_excluded_and_history_is_the_tail(tmp_path: Path) -> None:
    _write_csv(tmp_path, "TSLA.csv", _frame(days=30))
    data = _load(tmp_path, as_of=dt.date(2025, 6, 1), history=3)  # a Sunday
    assert [d.date().isoformat() for d in data.bars.index] == [
        "2025-05-28",
        "2025-05-29",
        "2025-05-30",
    ]


def test_unsorted_rows_come_back_ascending(tmp_path: Path) -> None:
    _write_csv(tmp_path, "TSLA.csv", _frame().iloc[::-1])
    assert _load(tmp_path).bars.index.is_monotonic_increasing


def test_lower_case_symbol_reads_the_upper_case_file(tmp_path: Path) -> None:
    _write_csv(tmp_path, "TSLA.csv", _frame())
    assert len(_load(tmp_path, "tsla").bars) == 10


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(MarketDataError, match="does not exist") as err:
        _load(tmp_path / "nope")
    assert "TSLA.csv with columns date,open,high,low,close,volume" in str(err.value)


def test_folder_without_data_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(MarketDataError, match="no .csv or .parquet files") as err:
        _load(tmp_path)
    assert "TSLA.csv with columns date,open,high,low,close,volume" in str(err.value)


def test_no_file_for_the_symbol_lists_the_available_ones(tmp_path: Path) -> None:
    _write_csv(tmp_path, "NVDA.csv", _frame())
    _frame().to_parquet(tmp_path / "AAPL.parquet")
    with pytest.raises(MarketDataError, match="no market data file for TSLA") as err:
        _load(tmp_path)
    assert "AAPL, NVDA" in str(err.value)
    assert "TSLA.csv or TSLA.parquet" in str(err.value)


def test_a_file_that_differs_only_in_case_is_pointed_out(tmp_path: Path) -> None:
    _write_csv(tmp_path, "tsla.csv", _frame())
    with pytest.raises(MarketDataError, match="tsla.csv differs only in case"):
        _load(tmp_path)


def test_both_csv_and_parquet_is_ambiguous(tmp_path: Path) -> None:
    _write_csv(tmp_path, "TSLA.csv", _frame())
    _frame().to_parquet(tmp_path / "TSLA.parquet")
    with pytest.raises(MarketDataError, match="ambiguous"):
        _load(tmp_path)


@pytest.mark.parametrize(
    ("name", "content"),
    [("TSLA.parquet", b"this is not parquet"), ("TSLA.csv", b"")],
)
def test_unreadable_file(tmp_path: Path, name: str, content: bytes) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(MarketDataError, match=f"cannot read .*{name}"):
        _load(tmp_path)


def test_malformed_csv(tmp_path: Path) -> None:
    (tmp_path / "TSLA.csv").write_text('date,open,high,low,close,volume\n2025-06-02,1,2,"0.5\n')
    with pytest.raises(MarketDataError, match="cannot read"):
        _load(tmp_path)


def test_missing_columns_are_named(tmp_path: Path) -> None:
    _write_csv(tmp_path, "TSLA.csv", _frame().drop(columns=["volume", "low"]))
    with pytest.raises(MarketDataError, match="lacks the column\\(s\\) low, volume"):
        _load(tmp_path)


def test_a_bad_date_is_named(tmp_path: Path) -> None:
    frame = _frame()
    frame.loc[3, "date"] = "yesterday"
    _write_csv(tmp_path, "TSLA.csv", frame)
    with pytest.raises(MarketDataError, match="1 of 10 dates do not fit %Y-%m-%d") as err:
        _load(tmp_path)
    assert "TSLA.csv: " in str(err.value)
    assert "line 5 ('yesterday')" in str(err.value)  # the header is line 1


def test_non_numeric_price_names_the_date(tmp_path: Path) -> None:
    frame = _frame().astype({"close": object})
    frame.loc[2, "close"] = "12,5"
    _write_csv(tmp_path, "TSLA.csv", frame)
    with pytest.raises(MarketDataError, match="close on 2025-05-26 is '12,5', not a number"):
        _load(tmp_path)


def test_missing_value_names_the_date(tmp_path: Path) -> None:
    frame = _frame().astype({"volume": float})
    frame.loc[5, "volume"] = np.nan
    _write_csv(tmp_path, "TSLA.csv", frame)
    with pytest.raises(MarketDataError, match="volume on 2025-05-29 is missing"):
        _load(tmp_path)


def test_negative_price_names_the_first_bad_date(tmp_path: Path) -> None:
    frame = _frame()
    frame.loc[[4, 6], "low"] = -1.0
    _write_csv(tmp_path, "TSLA.csv", frame)
    with pytest.raises(MarketDataError, match="low on 2025-05-28 is not positive"):
        _load(tmp_path)


def test_negative_volume_names_the_date(tmp_path: Path) -> None:
    frame = _frame()
    frame.loc[1, "volume"] = -5
    _write_csv(tmp_path, "TSLA.csv", frame)
    with pytest.raises(MarketDataError, match="volume on 2025-05-23 is negative"):
        _load(tmp_path)


@pytest.mark.parametrize(("column", "value"), [("low", 200.0), ("high", 50.0)])
def test_inconsistent_ohlc_names_the_date(tmp_path: Path, column: str, value: float) -> None:
    frame = _frame()
    frame.loc[7, column] = value
    _write_csv(tmp_path, "TSLA.csv", frame)
    with pytest.raises(MarketDataError, match="bar on 2025-06-02 is inconsistent"):
        _load(tmp_path)


def test_duplicate_dates(tmp_path: Path) -> None:
    frame = _frame()
    frame = pd.concat([frame, frame.iloc[[4]]], ignore_index=True)
    _write_csv(tmp_path, "TSLA.csv", frame)
    with pytest.raises(MarketDataError, match="more than one bar for 2025-05-28"):
        _load(tmp_path)


def test_no_bars_on_or_before_as_of(tmp_path: Path) -> None:
    _write_csv(tmp_path, "TSLA.csv", _frame(start="2025-07-01"))
    with pytest.raises(MarketDataError, match="no bars on or before 2025-06-04") as err:
        _load(tmp_path)
    assert "first bar is 2025-07-01" in str(err.value)


def test_a_header_only_file_has_no_bars(tmp_path: Path) -> None:
    (tmp_path / "TSLA.csv").write_text("date,open,high,low,close,volume\n")
    with pytest.raises(MarketDataError, match="no bars on or before"):
        _load(tmp_path)


def test_parquet_with_a_date_column_and_a_date_index_uses_the_column(tmp_path: Path) -> None:
    frame = _frame()
    frame.index = pd.bdate_range("2020-01-01", periods=len(frame), name="when")
    frame.to_parquet(tmp_path / "TSLA.parquet")
    assert _load(tmp_path).bars.index[0] == pd.Timestamp("2025-05-22")


def _dated(fmt: str, start: str = "2025-05-22", days: int = 10) -> pd.DataFrame:
    frame = _frame(days=days, start=start)
    return frame.assign(date=pd.to_datetime(frame["date"]).dt.strftime(fmt))


@pytest.mark.parametrize("fmt", OTHER_DATE_FORMATS)
def test_each_known_format_is_detected_for_the_whole_column(tmp_path: Path, fmt: str) -> None:
    _write_csv(tmp_path, "TSLA.csv", _dated(fmt))
    index = _load(tmp_path).bars.index
    assert [d.date() for d in index] == [d.date() for d in pd.bdate_range("2025-05-22", DAY)]


def test_a_day_first_file_whose_first_rows_could_be_month_first(tmp_path: Path) -> None:
    # 02/06 .. 12/06 read either way; 13/06 only fits day first, so the whole column is day first.
    _write_csv(tmp_path, "TSLA.csv", _dated("%d/%m/%Y", start="2025-06-02"))
    data = _load(tmp_path, as_of=dt.date(2025, 6, 13))
    assert data.bars.index[0] == pd.Timestamp("2025-06-02")
    assert data.bars.index[-1] == pd.Timestamp("2025-06-13")


def test_an_ambiguous_column_is_refused_until_the_format_is_set(tmp_path: Path) -> None:
    _write_csv(tmp_path, "TSLA.csv", _dated("%d/%m/%Y", start="2025-06-02", days=5))
    with pytest.raises(MarketDataError, match="the date column is ambiguous") as err:
        _load(tmp_path, as_of=dt.date(2025, 6, 6))
    message = str(err.value)
    assert "TSLA.csv" in message and "%m/%d/%Y and %d/%m/%Y" in message
    assert "line 2, '02/06/2025', is 2025-02-06 or 2025-06-02" in message
    assert "e.g. MARKET_DATA_DATE_FORMAT=%d/%m/%Y" in message
    data = _load(tmp_path, as_of=dt.date(2025, 6, 6), date_format="%d/%m/%Y")
    assert data.bars.index[0] == pd.Timestamp("2025-06-02")


def test_with_a_format_set_the_rows_that_do_not_match_are_named(tmp_path: Path) -> None:
    frame = _dated("%d/%m/%Y")
    frame.loc[[2, 6], "date"] = ["2025-05-26", "2025-05-30"]
    _write_csv(tmp_path, "TSLA.csv", frame)
    with pytest.raises(MarketDataError, match="2 of 10 dates do not match") as err:
        _load(tmp_path, date_format="%d/%m/%Y")
    message = str(err.value)
    assert "TSLA.csv" in message and "MARKET_DATA_DATE_FORMAT=%d/%m/%Y" in message
    assert "line 4 ('2025-05-26'), line 8 ('2025-05-30')" in message


def test_a_format_that_is_not_one_is_reported(tmp_path: Path) -> None:
    _write_csv(tmp_path, "TSLA.csv", _frame())
    with pytest.raises(MarketDataError, match="cannot read dates with MARKET_DATA_DATE_FORMAT=%Q"):
        _load(tmp_path, date_format="%Q")


def test_mixed_formats_name_the_closest_format_and_the_rows_off_it(tmp_path: Path) -> None:
    frame = _frame(days=20)
    frame.loc[[1, 4, 5, 7, 9, 12, 13], "date"] = "05/26/2025"
    frame.loc[15, "date"] = None
    _write_csv(tmp_path, "TSLA.csv", frame)
    with pytest.raises(MarketDataError, match="8 of 20 dates do not fit %Y-%m-%d") as err:
        _load(tmp_path)
    message = str(err.value)
    assert "line 3 ('05/26/2025'), line 6 ('05/26/2025')" in message
    assert "and 3 more" in message and "MARKET_DATA_DATE_FORMAT" in message


def test_a_column_of_no_known_dates_says_how_to_write_them(tmp_path: Path) -> None:
    _write_csv(tmp_path, "TSLA.csv", _frame(days=3).assign(date=["Mon", "Tue", ""]))
    with pytest.raises(MarketDataError, match="no date in a format this loader knows") as err:
        _load(tmp_path)
    assert "line 2 ('Mon'), line 3 ('Tue'), line 4 (empty)" in str(err.value)
    assert "YYYY-MM-DD" in str(err.value)


def test_line_numbers_count_the_blank_lines_pandas_skips(tmp_path: Path) -> None:
    text = _frame(days=4).to_csv(index=False).splitlines()
    text[3] = text[3].replace("2025-05-26", "26.05.2025")
    (tmp_path / "TSLA.csv").write_text("\n".join([text[0], "", *text[1:3], "   ", *text[3:]]))
    with pytest.raises(MarketDataError, match=r"line 6 \('26.05.2025'\)"):
        _load(tmp_path)


def test_yyyymmdd_stays_text_even_with_a_gap(tmp_path: Path) -> None:
    frame = _dated("%Y%m%d")
    frame.loc[4, "date"] = None
    _write_csv(tmp_path, "TSLA.csv", frame)
    with pytest.raises(MarketDataError, match="1 of 10 dates do not fit %Y%m%d") as err:
        _load(tmp_path)
    assert "line 6 (empty)" in str(err.value)


def test_timestamps_with_changing_utc_offsets_keep_their_session_day(tmp_path: Path) -> None:
    frame = _frame(days=3, start="2025-03-07")  # across the switch to daylight saving time
    frame["date"] = ["2025-03-07 16:00:00-05:00", "2025-03-10T16:00:00-04:00", "2025-03-11"]
    _write_csv(tmp_path, "TSLA.csv", frame)
    index = _load(tmp_path, as_of=dt.date(2025, 3, 11)).bars.index
    assert list(index) == [pd.Timestamp(d) for d in ("2025-03-07", "2025-03-10", "2025-03-11")]


def test_only_whole_iso_dates_count(tmp_path: Path) -> None:
    frame = _frame(days=3)
    frame.loc[1, "date"] = "2025-05"  # pandas' ISO8601 parser would take this as 2025-05-01
    _write_csv(tmp_path, "TSLA.csv", frame)
    with pytest.raises(MarketDataError, match=r"line 3 \('2025-05'\)"):
        _load(tmp_path)


def test_parquet_text_dates_are_detected_and_named_by_row(tmp_path: Path) -> None:
    _dated("%d.%m.%Y").to_parquet(tmp_path / "TSLA.parquet", index=False)
    assert _load(tmp_path).bars.index[0] == pd.Timestamp("2025-05-22")
    frame = _dated("%d.%m.%Y")
    frame.loc[2, "date"] = "2025-05-26"
    frame.to_parquet(tmp_path / "TSLA.parquet", index=False)
    with pytest.raises(MarketDataError, match=r"TSLA.parquet: 1 of 10 .*row 3 \('2025-05-26'\)"):
        _load(tmp_path)


def test_parquet_date_and_timestamp_columns_need_no_format(tmp_path: Path) -> None:
    frame = _frame()
    days = pd.to_datetime(frame["date"])
    frame.assign(date=days.dt.date).to_parquet(tmp_path / "TSLA.parquet", index=False)
    assert _load(tmp_path).bars.index[0] == pd.Timestamp("2025-05-22")
    aware = days + pd.Timedelta(hours=16)
    frame.assign(date=aware.dt.tz_localize("America/New_York")).to_parquet(
        tmp_path / "TSLA.parquet", index=False
    )
    assert _load(tmp_path, date_format="%d/%m/%Y").bars.index[0] == pd.Timestamp("2025-05-22")


def test_the_resource_passes_market_data_date_format(tmp_path: Path) -> None:
    _write_csv(tmp_path, "TSLA.csv", _dated("%d/%m/%Y", start="2025-06-02", days=5))
    source = MarketDataResource(
        source="csv", data_dir=str(tmp_path), date_format="%d/%m/%Y", ibkr=IbkrResource()
    )
    assert source.fetch("TSLA", dt.date(2025, 6, 6)).bars.index[0] == pd.Timestamp("2025-06-02")
    assert "dates as %d/%m/%Y" in source.describe()
    env = {"TRADING_DATA_DIR": str(tmp_path / "data"), "MARKET_DATA_DATE_FORMAT": "%d/%m/%Y"}
    assert resources_from_environment(env)["market_source"].date_format == "%d/%m/%Y"
    assert resources_from_environment({"TRADING_DATA_DIR": str(tmp_path)})[
        "market_source"
    ].date_format is None
