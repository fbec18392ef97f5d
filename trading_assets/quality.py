"""Data-quality and pre-trade rules the asset checks apply: plain functions over typed values.

Each returns a list of problems (empty when the value passes), so a check can say exactly what
is wrong and tests can assert on it.
"""

from __future__ import annotations

import datetime as dt

from trading_assets.calendar import sessions_between
from trading_assets.charts.spec import DPI, FIGSIZE_INCHES, PNG_MAGIC
from trading_assets.models import Action, ChartImage, MarketData, TradingSignal

MIN_BARS = 200  # SMA 200 needs 200 daily bars
EXPECTED_CHART_SIZE = (int(FIGSIZE_INCHES[0] * DPI), int(FIGSIZE_INCHES[1] * DPI))


def too_few_bars(data: MarketData, minimum: int = MIN_BARS) -> list[str]:
    n = len(data.bars)
    return [] if n >= minimum else [f"{n} bars, fewer than the {minimum} SMA 200 needs"]


def missing_sessions(data: MarketData) -> list[str]:
    """Exchange sessions between the first and last bar that have no bar."""
    index = data.bars.index
    expected = sessions_between(index[0].date(), index[-1].date())
    missing = expected.difference(index)
    if missing.empty:
        return []
    shown = ", ".join(d.date().isoformat() for d in missing[:5])
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    days = "1 trading day has" if len(missing) == 1 else f"{len(missing)} trading days have"
    return [f"{days} no bar: {shown}{more}"]


def inconsistent_ohlc(data: MarketData) -> list[str]:
    bars = data.bars
    low_ok = (bars["low"] <= bars[["open", "close"]].min(axis=1)) & (bars["low"] > 0)
    high_ok = bars["high"] >= bars[["open", "close"]].max(axis=1)
    volume_ok = bars["volume"] >= 0
    problems = []
    for label, ok in (
        ("low above open/close or not positive", low_ok),
        ("high below open/close", high_ok),
        ("negative volume", volume_ok),
    ):
        bad = bars.index[~ok.to_numpy()]
        if len(bad):
            problems.append(f"{label} on {len(bad)} bars, first {bad[0].date()}")
    return problems


def stale(data: MarketData, partition_day: dt.date) -> list[str]:
    last = data.bars.index[-1].date()
    if last == partition_day:
        return []
    return [f"the last bar is {last}, not the partition day {partition_day}"]


def chart_problems(chart: ChartImage) -> list[str]:
    problems = []
    if not chart.png.startswith(PNG_MAGIC):
        problems.append("the stored bytes are not a PNG")
    if (chart.width, chart.height) != EXPECTED_CHART_SIZE:
        problems.append(
            f"image is {chart.width}x{chart.height}, expected "
            f"{EXPECTED_CHART_SIZE[0]}x{EXPECTED_CHART_SIZE[1]}"
        )
    if chart.bars_shown < 2:
        problems.append(f"only {chart.bars_shown} bars drawn")
    return problems


def signal_level_problems(signal: TradingSignal, min_risk_reward: float) -> list[str]:
    """Entry, stop and target on the right sides, and enough reward for the risk."""
    if signal.action is Action.HOLD:
        return []
    entry, stop, target = signal.entry_price, signal.stop_loss, signal.take_profit
    if entry is None or stop is None or target is None:
        return [f"{signal.action.value} without entry, stop and target"]
    problems = []
    if signal.action is Action.BUY and not stop < entry < target:
        problems.append(f"BUY needs stop {stop} < entry {entry} < target {target}")
    if signal.action is Action.SELL and not target < entry < stop:
        problems.append(f"SELL needs target {target} < entry {entry} < stop {stop}")
    risk = abs(entry - stop)
    ratio = abs(target - entry) / risk if risk else 0.0
    if ratio < min_risk_reward:
        problems.append(f"risk/reward {ratio:.2f} is below the minimum {min_risk_reward:g}")
    return problems
