"""Loading bars from a folder of CSV/Parquet files, and every error a user can run into."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trading_assets.market_data.folder_source import MarketDataError, load_folder_bars

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


def _load(folder: Path, symbol: str = "TSLA", as_of: dt.date = DAY, history: int = 100):
    return load_folder_bars(folder, symbol, as_of, history)


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
    with pytest.raises(MarketDataError, match="row 4 has date 'yesterday'"):
        _load(tmp_path)


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
