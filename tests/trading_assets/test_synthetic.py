"""The synthetic generator: deterministic, prefix-stable, trading sessions only, sane OHLCV."""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pandas as pd
import pytest

from trading_assets.calendar import sessions_ending_at
from trading_assets.market_data.synthetic import ORIGIN, symbol_seed, synthetic_bars

DAY = dt.date(2025, 6, 2)


def test_same_symbol_and_date_give_identical_bars() -> None:
    first = synthetic_bars("TSLA", DAY, 520)
    second = synthetic_bars("TSLA", DAY, 520)
    pd.testing.assert_frame_equal(first.bars, second.bars)
    assert first.source == "synthetic"
    assert first.source_detail == second.source_detail
    assert f"seed={symbol_seed('TSLA')}" in first.source_detail


def test_seed_is_a_stable_sha256_not_pythons_salted_hash() -> None:
    # Fixed value: a change here silently changes every synthetic chart ever rendered.
    assert symbol_seed("TSLA") == 3456117278911341481
    assert symbol_seed(" tsla ") == symbol_seed("TSLA")


def test_an_earlier_date_is_an_exact_prefix_of_a_later_one() -> None:
    early = synthetic_bars("NVDA", dt.date(2024, 3, 1), 4000).bars
    late = synthetic_bars("NVDA", DAY, 4000).bars
    assert early.index[0] == late.index[0] == pd.Timestamp(ORIGIN)
    pd.testing.assert_frame_equal(early, late.loc[: early.index[-1]])


def test_history_is_the_last_sessions_ending_at_as_of() -> None:
    data = synthetic_bars("TSLA", DAY, 250)
    assert len(data.bars) == 250
    assert data.bars.index[-1] == pd.Timestamp(DAY)
    assert data.bars.index.max().date() <= data.as_of
    assert data.bars.index.equals(sessions_ending_at(DAY, 250))
    full = synthetic_bars("TSLA", DAY, 5000).bars
    pd.testing.assert_frame_equal(data.bars, full.iloc[-250:])


def test_no_bar_after_as_of_and_no_holiday_bar() -> None:
    data = synthetic_bars("AAPL", dt.date(2025, 7, 7), 60)
    assert data.bars.index.max() == pd.Timestamp("2025-07-07")
    assert pd.Timestamp("2025-07-04") not in data.bars.index  # Independence Day
    assert pd.Timestamp("2025-07-03") in data.bars.index
    assert (data.bars.index.dayofweek < 5).all()


@pytest.mark.parametrize("day", [dt.date(2025, 7, 4), dt.date(2025, 6, 1)])
def test_a_non_trading_as_of_raises_naming_the_date(day: dt.date) -> None:
    with pytest.raises(ValueError, match=str(day)):
        synthetic_bars("TSLA", day, 100)


def test_history_must_be_positive() -> None:
    with pytest.raises(ValueError, match="history"):
        synthetic_bars("TSLA", DAY, 0)


def test_a_short_path_returns_the_bars_it_has() -> None:
    data = synthetic_bars("TSLA", dt.date(2010, 1, 8), 520)
    assert len(data.bars) == 5


@pytest.mark.parametrize("symbol", ["TSLA", "NVDA", "BRK.B", "X", "SPY"])
def test_ohlcv_is_consistent_and_realistic(symbol: str) -> None:
    bars = synthetic_bars(symbol, DAY, 5000).bars
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
    assert (bars["low"] > 0).all()
    prices = bars[["open", "high", "low", "close"]].to_numpy()
    assert np.array_equal(prices, np.round(prices, 2))
    assert bars["volume"].dtype == np.int64 and (bars["volume"] > 0).all()
    # Overnight gaps: the open is usually not the previous close.
    assert (bars["open"].iloc[1:].to_numpy() != bars["close"].iloc[:-1].to_numpy()).mean() > 0.9
    yearly_vol = np.log(bars["close"]).diff().std() * np.sqrt(252)
    assert 0.15 < yearly_vol < 0.8


def test_volume_is_higher_on_big_moves() -> None:
    bars = synthetic_bars("TSLA", DAY, 5000).bars
    move = np.log(bars["close"]).diff().abs()
    big = move > move.quantile(0.9)
    small = move < move.quantile(0.5)
    assert bars.loc[big, "volume"].mean() > 1.3 * bars.loc[small, "volume"].mean()


def test_different_symbols_differ() -> None:
    tsla = synthetic_bars("TSLA", DAY, 100)
    nvda = synthetic_bars("NVDA", DAY, 100)
    assert tsla.source_detail != nvda.source_detail
    assert not np.allclose(tsla.bars["close"].to_numpy(), nvda.bars["close"].to_numpy())
    assert not np.allclose(np.diff(np.log(tsla.bars["close"])), np.diff(np.log(nvda.bars["close"])))


def test_four_thousand_sessions_take_milliseconds() -> None:
    synthetic_bars("TSLA", DAY, 4000)  # warm the calendar cache
    start = time.perf_counter()
    for _ in range(10):
        synthetic_bars("TSLA", DAY, 4000)
    assert (time.perf_counter() - start) / 10 < 0.05
