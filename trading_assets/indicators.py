"""Technical indicators (SMA, Bollinger, RSI, MACD) and the snapshot the analysis prompt reads."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

SNAPSHOT_DECIMALS = 4
RANGE_WINDOW = 20
VOLUME_WINDOW = 20
VOLUME_RECENT = 5


def _check_window(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer number of bars, got {value!r}")


def sma(close: pd.Series, window: int) -> pd.Series:
    """Simple moving average; NaN until ``window`` bars are available."""
    _check_window("window", window)
    return close.astype(float).rolling(window, min_periods=window).mean()


def bollinger(close: pd.Series, window: int = 20, k: float = 2.0) -> pd.DataFrame:
    """Bollinger Bands: SMA(window) +/- k standard deviations.

    Uses the population standard deviation (ddof=0), as Bollinger defines the bands and as
    most charting platforms draw them; the sample std would widen them by sqrt(n/(n-1)).
    """
    _check_window("window", window)
    if not k > 0:
        raise ValueError(f"k (band width in standard deviations) must be positive, got {k!r}")
    rolling = close.astype(float).rolling(window, min_periods=window)
    mid = rolling.mean()
    width = k * rolling.std(ddof=0)
    return pd.DataFrame({"bb_mid": mid, "bb_upper": mid + width, "bb_lower": mid - width})


def _wilder_average(values: pd.Series, period: int) -> pd.Series:
    """Wilder's smoothing: seed with the mean of the first ``period`` values, then
    avg_t = (avg_{t-1} * (period - 1) + x_t) / period.

    That recursion is an EMA with alpha = 1/period and adjust=False, so pandas can run it
    once the seed replaces the first ``period`` values.
    """
    out = pd.Series(np.nan, index=values.index, dtype=float)
    if len(values) < period:
        return out
    seeded = values.iloc[period - 1 :].copy()
    seeded.iloc[0] = values.iloc[:period].mean()
    out.iloc[period - 1 :] = seeded.ewm(alpha=1.0 / period, adjust=False).mean().to_numpy()
    return out


def rsi(close: pd.Series, period: int = 14) -> pd.Series:
    """Relative Strength Index with Wilder's smoothing; NaN for the first ``period`` bars.

    Only gains gives 100, only losses gives 0, and a flat stretch (no gains, no losses) gives
    the neutral 50 rather than 0/0.
    """
    _check_window("period", period)
    change = close.astype(float).diff().iloc[1:]
    avg_gain = _wilder_average(change.clip(lower=0.0), period)
    avg_loss = _wilder_average((-change).clip(lower=0.0), period)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)
    # avg_loss == 0 makes gain/loss infinite (-> 100) or 0/0 when flat: pin the flat case to 50.
    value = value.mask((avg_loss == 0) & (avg_gain > 0), 100.0)
    value = value.mask((avg_loss == 0) & (avg_gain == 0), 50.0)
    return value.reindex(close.index)


def macd(close: pd.Series, fast: int = 12, slow: int = 26, signal: int = 9) -> pd.DataFrame:
    """MACD = EMA(fast) - EMA(slow), signal = EMA(signal) of MACD, hist = MACD - signal.

    EMAs use adjust=False (seeded with the first close). Values are NaN during the warm-up
    (MACD before ``slow`` bars, signal and histogram before ``slow + signal - 1``) so that a
    two-bar history does not pose as a meaningful MACD.
    """
    for name, value in (("fast", fast), ("slow", slow), ("signal", signal)):
        _check_window(name, value)
    if fast >= slow:
        raise ValueError(f"the fast EMA span ({fast}) must be shorter than the slow one ({slow})")
    prices = close.astype(float)
    ema_fast = prices.ewm(span=fast, adjust=False).mean()
    ema_slow = prices.ewm(span=slow, adjust=False, min_periods=slow).mean()
    line = ema_fast - ema_slow
    # Leading NaNs are skipped by ewm, so the signal EMA is seeded with the first real MACD.
    signal_line = line.ewm(span=signal, adjust=False, min_periods=signal).mean()
    return pd.DataFrame({"macd": line, "macd_signal": signal_line, "macd_hist": line - signal_line})


def _clean(value: float) -> float | None:
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        return None
    return round(value, SNAPSHOT_DECIMALS)


def _last(series: pd.Series) -> float | None:
    return _clean(series.iloc[-1])


def _change_pct(close: pd.Series, bars_back: int) -> float | None:
    if len(close) <= bars_back:
        return None
    before = float(close.iloc[-1 - bars_back])
    if before == 0:
        return None
    return _clean((float(close.iloc[-1]) / before - 1.0) * 100.0)


def _volume_stats(volume: pd.Series) -> tuple[float | None, float | None]:
    if len(volume) < VOLUME_WINDOW:
        return None, None
    avg_20 = float(volume.iloc[-VOLUME_WINDOW:].mean())
    avg_5 = float(volume.iloc[-VOLUME_RECENT:].mean())
    trend = avg_5 / avg_20 if avg_20 > 0 else math.nan
    return _clean(avg_20), _clean(trend)


def indicator_snapshot(bars: pd.DataFrame) -> dict[str, float | None]:
    """Indicator values as of the last bar, rounded to 4 decimals.

    A value is None (never NaN) when the history is too short to compute it.
    """
    missing = [c for c in ("high", "low", "close", "volume") if c not in bars.columns]
    if missing:
        raise ValueError(
            f"indicator_snapshot needs bar columns {missing}; got {list(bars.columns)}"
        )
    if bars.empty:
        raise ValueError("indicator_snapshot needs at least one bar, got an empty frame")
    close = bars["close"].astype(float)
    has_range = len(bars) >= RANGE_WINDOW
    volume_avg_20, volume_trend = _volume_stats(bars["volume"].astype(float))
    lines = macd(close)
    bands = bollinger(close)
    return {
        "close": _last(close),
        "sma_20": _last(sma(close, 20)),
        "sma_50": _last(sma(close, 50)),
        "sma_200": _last(sma(close, 200)),
        "rsi_14": _last(rsi(close, 14)),
        "macd": _last(lines["macd"]),
        "macd_signal": _last(lines["macd_signal"]),
        "macd_hist": _last(lines["macd_hist"]),
        "bb_upper": _last(bands["bb_upper"]),
        "bb_mid": _last(bands["bb_mid"]),
        "bb_lower": _last(bands["bb_lower"]),
        "high_20": _clean(bars["high"].iloc[-RANGE_WINDOW:].max()) if has_range else None,
        "low_20": _clean(bars["low"].iloc[-RANGE_WINDOW:].min()) if has_range else None,
        "volume_avg_20": volume_avg_20,
        "volume_trend": volume_trend,
        "change_1d_pct": _change_pct(close, 1),
        "change_5d_pct": _change_pct(close, 5),
        "change_20d_pct": _change_pct(close, 20),
    }
