"""Seeded synthetic daily bars: a deterministic, prefix-stable random walk per symbol.

Used when no real data is configured; the same symbol and date always give the same bars.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pandas as pd

from trading_assets.calendar import is_trading_day, sessions_between
from trading_assets.models import MarketData

# Every path starts here, whatever as_of is: that is what makes earlier dates a prefix.
ORIGIN = dt.date(2010, 1, 4)
TRADING_DAYS_PER_YEAR = 252
# Share of the daily variance that happens overnight (open vs previous close).
GAP_VARIANCE_SHARE = 0.12
# Pull of the log price towards its drifting trend line per session (half-life ~2 years), so
# a 70 % volatility symbol does not wander to a few cents or to millions over 15 years.
MEAN_REVERSION = 1.0 / 700.0
# Normals drawn per session, always all of them, in this column order.
_GAP, _INTRADAY, _HIGH, _LOW, _VOLUME = range(5)
_DRAWS_PER_SESSION = 5


class _Profile:
    """The symbol-dependent constants of the walk."""

    def __init__(self, seed: int) -> None:
        # A stream separate from the path's, so the profile never shifts the path's numbers.
        rng = np.random.default_rng([seed, 0])
        self.start_price = float(np.exp(rng.uniform(np.log(20.0), np.log(600.0))))
        self.annual_vol = float(rng.uniform(0.20, 0.70))
        self.annual_drift = float(rng.uniform(-0.02, 0.12))
        self.base_volume = float(np.exp(rng.uniform(np.log(5e5), np.log(4e7))))


def symbol_seed(symbol: str) -> int:
    """A seed stable across processes and Python versions (``hash()`` is salted per process)."""
    digest = hashlib.sha256(symbol.strip().upper().encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def _ar1_cumsum(shocks: np.ndarray, phi: float) -> np.ndarray:
    """x_t = phi * x_{t-1} + shock_t with x_{-1} = 0, without a Python loop.

    x_t = phi^t * sum_{k<=t} shock_k * phi^-k; phi^-n stays small for the ~4,500 sessions the
    calendar allows (e^(n/700)), and cumsum is sequential, so prefixes are bit-identical.
    """
    steps = np.arange(len(shocks), dtype=float)
    return np.power(phi, steps) * np.cumsum(shocks * np.power(phi, -steps))


def _walk(profile: _Profile, seed: int, n_sessions: int) -> pd.DataFrame:
    rng = np.random.default_rng([seed, 1])
    # One call of a fixed row shape: numpy fills row by row, so n rows are a prefix of n + m.
    z = rng.standard_normal((n_sessions, _DRAWS_PER_SESSION))
    sigma = profile.annual_vol / np.sqrt(TRADING_DAYS_PER_YEAR)
    gap = np.sqrt(GAP_VARIANCE_SHARE) * sigma * z[:, _GAP]
    intraday = np.sqrt(1.0 - GAP_VARIANCE_SHARE) * sigma * z[:, _INTRADAY]

    steps = np.arange(1, n_sessions + 1, dtype=float)
    trend = np.log(profile.start_price) + profile.annual_drift / TRADING_DAYS_PER_YEAR * steps
    deviation = _ar1_cumsum(gap + intraday, 1.0 - MEAN_REVERSION)
    close = np.exp(trend + deviation)
    prev_close = np.concatenate(([profile.start_price], close[:-1]))
    open_ = prev_close * np.exp(gap)

    # Wicks beyond the candle body, about half a daily sigma on average.
    high = np.maximum(open_, close) * np.exp(0.6 * sigma * np.abs(z[:, _HIGH]))
    low = np.minimum(open_, close) * np.exp(-0.6 * sigma * np.abs(z[:, _LOW]))

    # Volume rises with the size of the day's move (in sigmas), plus lognormal noise.
    move = np.abs(np.log(close / prev_close)) / sigma
    volume = profile.base_volume * np.exp(0.3 * z[:, _VOLUME] + 0.35 * (move - 0.8))

    return _to_bars(open_, high, low, close, volume)


def _to_bars(
    open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray
) -> pd.DataFrame:
    o, h, lo, c = (np.round(a, 2) for a in (open_, high, low, close))
    # Rounding to cents can cross the body; re-impose the OHLC envelope and a positive low.
    h = np.maximum(h, np.maximum(o, c))
    lo = np.maximum(np.minimum(lo, np.minimum(o, c)), 0.01)
    return pd.DataFrame(
        {
            "open": np.maximum(o, 0.01),
            "high": np.maximum(h, 0.01),
            "low": lo,
            "close": np.maximum(c, 0.01),
            "volume": np.maximum(np.round(volume), 1).astype(np.int64),
        }
    )


def synthetic_bars(symbol: str, as_of: dt.date, history: int) -> MarketData:
    """The last ``history`` trading sessions of ``symbol``'s synthetic path, ending at ``as_of``.

    Fewer bars come back when the path (which starts on ``ORIGIN``) is shorter than that.
    """
    if history < 1:
        raise ValueError(f"history must be at least 1 trading day, got {history}")
    if not is_trading_day(as_of):
        raise ValueError(
            f"{as_of} ({as_of:%A}) is not an NYSE trading day, so it has no bar: "
            "ask for a weekday that is not an exchange holiday"
        )
    sessions = sessions_between(ORIGIN, as_of)
    if len(sessions) == 0:
        raise ValueError(
            f"synthetic data starts on {ORIGIN}; {as_of} is before that: pick a later date"
        )
    seed = symbol_seed(symbol)
    bars = _walk(_Profile(seed), seed, len(sessions))
    bars.index = pd.DatetimeIndex(sessions, name="date")
    return MarketData(
        symbol=symbol,
        as_of=as_of,
        source="synthetic",
        source_detail=f"seed={seed} (sha256 of symbol {symbol.strip().upper()!r})",
        bars=bars.iloc[-history:],
    )
