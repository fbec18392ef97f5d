"""Indicators checked against hand-worked numbers and plain-loop reference implementations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from trading_assets.indicators import bollinger, indicator_snapshot, macd, rsi, sma

# The 14-period RSI worked example from StockCharts ("cs-rsi" spreadsheet).
WILDER_CLOSES = [
    44.34, 44.09, 44.15, 43.61, 44.33, 44.83, 45.10, 45.42, 45.84, 46.08, 45.89, 46.03, 45.61,
    46.28, 46.28, 46.00, 46.03, 46.41, 46.22, 45.64, 46.21, 46.25, 45.71, 46.45, 45.78, 45.35,
    44.03, 44.18, 44.22, 44.57, 43.42, 42.66, 43.13,
]  # fmt: skip
WILDER_RSI = [
    70.53, 66.32, 66.55, 69.41, 66.36, 57.97, 62.93, 63.26, 56.06, 62.38, 54.71, 50.42, 39.99,
    41.46, 41.87, 45.46, 37.30, 33.08, 37.77,
]  # fmt: skip


def _loop_rsi(closes: list[float], period: int) -> list[float | None]:
    out: list[float | None] = [None] * len(closes)
    gains = [max(b - a, 0.0) for a, b in zip(closes, closes[1:], strict=False)]
    losses = [max(a - b, 0.0) for a, b in zip(closes, closes[1:], strict=False)]
    avg_gain = sum(gains[:period]) / period
    avg_loss = sum(losses[:period]) / period
    for i in range(period, len(closes)):
        if i > period:
            avg_gain = (avg_gain * (period - 1) + gains[i - 1]) / period
            avg_loss = (avg_loss * (period - 1) + losses[i - 1]) / period
        out[i] = 100.0 if avg_loss == 0 else 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)
    return out


def _loop_ema(values: list[float], span: int) -> list[float]:
    alpha = 2.0 / (span + 1)
    out = [values[0]]
    for value in values[1:]:
        out.append(alpha * value + (1 - alpha) * out[-1])
    return out


def _random_closes(n: int, seed: int = 7) -> pd.Series:
    rng = np.random.default_rng(seed)
    return pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.02, n))))


def _bars(closes: pd.Series | list[float], volume: list[float] | None = None) -> pd.DataFrame:
    close = pd.Series(closes, dtype=float)
    index = pd.bdate_range("2024-01-02", periods=len(close), name="date")
    return pd.DataFrame(
        {
            "open": close.to_numpy(),
            "high": close.to_numpy() + 1,
            "low": close.to_numpy() - 1,
            "close": close.to_numpy(),
            "volume": volume if volume is not None else [1000] * len(close),
        },
        index=index,
    )


def test_sma_is_nan_until_the_window_fills() -> None:
    result = sma(pd.Series([1.0, 2.0, 3.0, 4.0, 5.0]), 3)
    assert result.iloc[:2].isna().all()
    assert result.iloc[2:].tolist() == [2.0, 3.0, 4.0]


def test_sma_of_a_window_as_long_as_the_series_has_one_value() -> None:
    result = sma(pd.Series([2.0, 4.0, 9.0]), 3)
    assert result.isna().tolist() == [True, True, False]
    assert result.iloc[-1] == 5.0


@pytest.mark.parametrize("window", [0, -3])
def test_sma_rejects_a_non_positive_window(window: int) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        sma(pd.Series([1.0, 2.0]), window)


def test_bollinger_uses_the_population_standard_deviation() -> None:
    bands = bollinger(pd.Series([1.0, 2.0, 3.0, 4.0, 5.0]), window=5, k=2.0)
    # mean 3, population variance (4+1+0+1+4)/5 = 2; the sample std would be sqrt(2.5).
    assert bands["bb_mid"].iloc[-1] == pytest.approx(3.0)
    assert bands["bb_upper"].iloc[-1] == pytest.approx(3.0 + 2 * math.sqrt(2.0))
    assert bands["bb_lower"].iloc[-1] == pytest.approx(3.0 - 2 * math.sqrt(2.0))
    assert bands.iloc[:4].isna().all().all()
    assert list(bands.columns) == ["bb_mid", "bb_upper", "bb_lower"]


def test_rsi_matches_the_published_wilder_example() -> None:
    result = rsi(pd.Series(WILDER_CLOSES), 14)
    assert result.iloc[:14].isna().all()
    # By hand: the first 14 changes gain 3.34 and lose 1.40 in total, so RS = 3.34 / 1.40.
    assert result.iloc[14] == pytest.approx(100 - 100 / (1 + 3.34 / 1.40), rel=1e-12)
    # The sheet rounds its averages to two decimals (RS 2.39 -> 70.53), hence the tolerance.
    assert result.iloc[14:].tolist() == pytest.approx(WILDER_RSI, abs=0.08)


def test_rsi_hand_worked_period_two() -> None:
    # changes +1, -1, +1: seed averages 0.5/0.5 -> 50; then gain (0.5+1)/2, loss 0.5/2 -> RS 3.
    result = rsi(pd.Series([1.0, 2.0, 1.0, 2.0]), 2)
    assert result.iloc[:2].isna().all()
    assert result.iloc[2:].tolist() == pytest.approx([50.0, 75.0])


def test_rsi_matches_a_plain_loop_on_a_random_walk() -> None:
    closes = _random_closes(300)
    expected = _loop_rsi(closes.tolist(), 14)
    result = rsi(closes, 14)
    assert result.iloc[:14].isna().all()
    assert result.iloc[14:].tolist() == pytest.approx(expected[14:], rel=1e-10)


def test_rsi_extremes() -> None:
    rising = pd.Series(np.arange(1.0, 31.0))
    assert (rsi(rising).dropna() == 100.0).all()
    assert (rsi(rising[::-1].reset_index(drop=True)).dropna() == 0.0).all()
    # No gains and no losses is neither overbought nor oversold.
    assert (rsi(pd.Series([5.0] * 20)).dropna() == 50.0).all()


def test_macd_of_a_constant_series_is_zero() -> None:
    result = macd(pd.Series([42.0] * 60))
    assert (result.dropna() == 0.0).all().all()
    assert result["macd"].first_valid_index() == 25
    assert result["macd_signal"].first_valid_index() == 33


def test_macd_matches_plain_loop_emas() -> None:
    closes = _random_closes(120).tolist()
    fast, slow = _loop_ema(closes, 12), _loop_ema(closes, 26)
    line = [f - s for f, s in zip(fast, slow, strict=True)]
    signal = _loop_ema(line[25:], 9)  # the signal EMA starts at the first shown MACD value
    result = macd(pd.Series(closes))
    assert result["macd"].iloc[25:].tolist() == pytest.approx(line[25:], rel=1e-9)
    assert result["macd_signal"].iloc[33:].tolist() == pytest.approx(signal[8:], rel=1e-9)
    hist = [m - s for m, s in zip(line[33:], signal[8:], strict=True)]
    assert result["macd_hist"].iloc[33:].tolist() == pytest.approx(hist, rel=1e-9, abs=1e-12)


def test_macd_rejects_a_fast_span_not_shorter_than_the_slow_one() -> None:
    with pytest.raises(ValueError, match="shorter"):
        macd(pd.Series([1.0] * 40), fast=26, slow=12)


SNAPSHOT_KEYS = {
    "close", "sma_20", "sma_50", "sma_200", "rsi_14", "macd", "macd_signal", "macd_hist",
    "bb_upper", "bb_mid", "bb_lower", "high_20", "low_20", "volume_avg_20", "volume_trend",
    "change_1d_pct", "change_5d_pct", "change_20d_pct",
}  # fmt: skip


def test_snapshot_is_none_where_history_is_too_short() -> None:
    snap = indicator_snapshot(_bars([10.0, 11.0, 12.1]))
    assert set(snap) == SNAPSHOT_KEYS
    assert snap["close"] == 12.1
    assert snap["change_1d_pct"] == 10.0
    too_short = SNAPSHOT_KEYS - {"close", "change_1d_pct"}
    assert all(snap[key] is None for key in too_short)


def test_snapshot_with_60_bars_has_everything_but_sma_200() -> None:
    snap = indicator_snapshot(_bars(_random_closes(60)))
    assert snap["sma_200"] is None
    assert all(isinstance(snap[k], float) for k in SNAPSHOT_KEYS - {"sma_200"})


def test_snapshot_values_are_the_last_indicator_values_rounded() -> None:
    closes = _random_closes(250)
    snap = indicator_snapshot(_bars(closes))
    assert all(isinstance(v, float) and not math.isnan(v) for v in snap.values())
    assert snap["sma_200"] == round(closes.iloc[-200:].mean(), 4)
    assert snap["rsi_14"] == round(_loop_rsi(closes.tolist(), 14)[-1] or 0.0, 4)
    assert snap["macd_hist"] == round(macd(closes)["macd_hist"].iloc[-1], 4)
    assert snap["bb_upper"] == round(bollinger(closes)["bb_upper"].iloc[-1], 4)
    assert snap["high_20"] == round(closes.iloc[-20:].max() + 1, 4)
    assert snap["low_20"] == round(closes.iloc[-20:].min() - 1, 4)
    assert snap["change_5d_pct"] == round((closes.iloc[-1] / closes.iloc[-6] - 1) * 100, 4)
    assert snap["change_20d_pct"] == round((closes.iloc[-1] / closes.iloc[-21] - 1) * 100, 4)
    assert all(v == round(v, 4) for v in snap.values() if v is not None)


def test_snapshot_volume_average_and_trend() -> None:
    # 15 bars of 100 then 5 bars of 400: 20-bar mean 175, 5-bar mean 400.
    snap = indicator_snapshot(_bars([50.0] * 20, volume=[100] * 15 + [400] * 5))
    assert snap["volume_avg_20"] == 175.0
    assert snap["volume_trend"] == round(400 / 175, 4)


def test_snapshot_of_no_bars_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one bar"):
        indicator_snapshot(_bars([]))
