"""Chart rendering: valid PNGs, omitted indicators on short history, weekly resampling, no leaks."""

from __future__ import annotations

import datetime as dt
import struct

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from trading_assets.charts.render import render_chart, weekly_bars
from trading_assets.market_data.synthetic import synthetic_bars
from trading_assets.models import ChartImage, Timeframe

DAY = dt.date(2025, 6, 2)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ALL_INDICATORS = [
    "sma_20", "sma_50", "sma_200", "bb_upper", "bb_mid", "bb_lower",
    "rsi_14", "macd", "macd_signal", "macd_hist",
]  # fmt: skip


@pytest.fixture(scope="module")
def daily() -> pd.DataFrame:
    return synthetic_bars("TSLA", DAY, 520).bars


def _assert_png(chart: ChartImage) -> None:
    assert chart.png[:8] == PNG_MAGIC
    assert len(chart.png) > 20_000
    width, height = struct.unpack(">II", chart.png[16:24])
    assert (chart.width, chart.height) == (width, height)
    assert chart.width >= 1000 and chart.height >= 700


def test_daily_chart_with_full_history(daily: pd.DataFrame) -> None:
    chart = render_chart(daily, symbol="TSLA", as_of=DAY, timeframe=Timeframe.DAILY)
    _assert_png(chart)
    assert chart.bars_shown == 120
    assert chart.indicators == ALL_INDICATORS
    assert chart.omitted_indicators == []
    assert set(chart.last_values) == set(ALL_INDICATORS)
    assert all(isinstance(v, float) for v in chart.last_values.values())
    assert chart.symbol == "TSLA" and chart.as_of == DAY and chart.timeframe is Timeframe.DAILY


def test_indicators_use_the_full_history_not_just_the_shown_bars(daily: pd.DataFrame) -> None:
    chart = render_chart(daily, symbol="TSLA", as_of=DAY, timeframe=Timeframe.DAILY)
    assert chart.last_values["sma_200"] == round(daily["close"].iloc[-200:].mean(), 4)


def test_weekly_chart(daily: pd.DataFrame) -> None:
    weekly = weekly_bars(daily)
    chart = render_chart(
        weekly, symbol="TSLA", as_of=DAY, timeframe=Timeframe.WEEKLY, bars_shown=104
    )
    _assert_png(chart)
    assert chart.timeframe is Timeframe.WEEKLY
    assert chart.bars_shown == 104
    # About 108 weeks of history: SMA 200 cannot exist yet.
    assert chart.omitted_indicators == ["sma_200"]
    assert "sma_200" not in chart.last_values


def test_short_history_omits_what_it_cannot_draw(daily: pd.DataFrame) -> None:
    chart = render_chart(daily.iloc[-60:], symbol="TSLA", as_of=DAY, timeframe=Timeframe.DAILY)
    _assert_png(chart)
    assert chart.bars_shown == 60
    assert chart.omitted_indicators == ["sma_200"]
    assert "sma_50" in chart.indicators


def test_very_short_history_draws_candles_and_volume_only(daily: pd.DataFrame) -> None:
    chart = render_chart(daily.iloc[-10:], symbol="TSLA", as_of=DAY, timeframe=Timeframe.DAILY)
    _assert_png(chart)
    assert chart.indicators == []
    assert chart.omitted_indicators == ALL_INDICATORS
    assert chart.last_values == {}


def test_an_indicator_nan_only_before_the_window_is_drawn(daily: pd.DataFrame) -> None:
    # 210 bars, 120 shown: SMA 200 exists only for the last 11 shown bars; partial is fine.
    chart = render_chart(daily.iloc[-210:], symbol="TSLA", as_of=DAY, timeframe=Timeframe.DAILY)
    assert "sma_200" in chart.indicators


def test_rendering_many_charts_leaves_no_open_figures(daily: pd.DataFrame) -> None:
    plt.close("all")
    for i in range(20):
        render_chart(
            daily.iloc[: 200 + i * 10], symbol="TSLA", as_of=DAY, timeframe=Timeframe.DAILY
        )
    assert len(plt.get_fignums()) == 0


def test_bad_input_is_rejected(daily: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="no bars"):
        render_chart(daily.iloc[:0], symbol="TSLA", as_of=DAY, timeframe=Timeframe.DAILY)
    with pytest.raises(ValueError, match="missing \\['volume'\\]"):
        render_chart(
            daily.drop(columns="volume"), symbol="TSLA", as_of=DAY, timeframe=Timeframe.DAILY
        )
    assert len(plt.get_fignums()) == 0


def _daily_frame(rows: list[tuple[str, float, float, float, float, int]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["date", "open", "high", "low", "close", "volume"])
    return frame.set_index(pd.DatetimeIndex(frame.pop("date"), name="date"))


def test_weekly_bars_on_a_hand_made_example() -> None:
    daily = _daily_frame(
        [
            # Holiday-short week: Good Friday 2025-04-18 is closed.
            ("2025-04-14", 10.0, 11.0, 9.5, 10.5, 100),
            ("2025-04-15", 10.5, 12.0, 10.0, 11.5, 200),
            ("2025-04-16", 11.5, 11.8, 9.0, 9.2, 300),
            ("2025-04-17", 9.3, 10.0, 9.1, 9.9, 400),
            # No bars at all in the week of 2025-04-21: it must not appear.
            # Partial last week: data ends on Tuesday.
            ("2025-04-28", 20.0, 21.0, 19.0, 20.5, 10),
            ("2025-04-29", 20.5, 22.0, 20.1, 21.9, 20),
        ]
    )
    weekly = weekly_bars(daily)
    assert weekly.index.name == "date"
    # Each week carries the date of its last actual bar, never a Friday still to come.
    assert list(weekly.index) == [pd.Timestamp("2025-04-17"), pd.Timestamp("2025-04-29")]
    assert weekly.loc["2025-04-17"].tolist() == [10.0, 12.0, 9.0, 9.9, 1000]
    assert weekly.loc["2025-04-29"].tolist() == [20.0, 22.0, 19.0, 21.9, 30]
    assert list(weekly.columns) == ["open", "high", "low", "close", "volume"]


def test_weekly_bars_label_full_weeks_by_their_friday(daily: pd.DataFrame) -> None:
    weekly = weekly_bars(daily)
    assert weekly.index[-1] == pd.Timestamp(DAY)  # Monday 2025-06-02: a one-day partial week
    assert weekly.index.max() <= pd.Timestamp(DAY)
    assert pd.Timestamp("2025-05-30") in weekly.index
    assert weekly["volume"].sum() == daily["volume"].sum()
    assert weekly.index.is_monotonic_increasing and not weekly.index.has_duplicates


def test_weekly_bars_need_a_date_index() -> None:
    with pytest.raises(ValueError, match="DatetimeIndex"):
        weekly_bars(pd.DataFrame({c: [1.0] for c in ["open", "high", "low", "close", "volume"]}))
