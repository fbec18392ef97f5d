import datetime as dt

import pandas as pd

from trading_assets import quality
from trading_assets.market_data.synthetic import synthetic_bars
from trading_assets.models import MarketData, TradingSignal

DAY = dt.date(2025, 6, 2)


def _data(bars: pd.DataFrame) -> MarketData:
    return MarketData(symbol="TSLA", as_of=DAY, source="csv", source_detail="t", bars=bars)


def test_synthetic_data_passes_every_rule() -> None:
    data = synthetic_bars("TSLA", DAY, 300)
    assert quality.too_few_bars(data) == []
    assert quality.missing_sessions(data) == []
    assert quality.inconsistent_ohlc(data) == []
    assert quality.stale(data, DAY) == []


def test_each_rule_names_what_is_wrong() -> None:
    bars = synthetic_bars("TSLA", DAY, 300).bars
    assert quality.too_few_bars(_data(bars.iloc[-50:])) == [
        "50 bars, fewer than the 200 SMA 200 needs"]
    gappy = bars.drop(pd.Timestamp("2025-05-01"))
    assert quality.missing_sessions(_data(gappy)) == ["1 trading day has no bar: 2025-05-01"]
    broken = bars.copy()
    broken.loc[pd.Timestamp("2025-05-02"), "high"] = broken["low"].min() - 1
    assert quality.inconsistent_ohlc(_data(broken)) == [
        "high below open/close on 1 bars, first 2025-05-02"]
    old = MarketData(symbol="TSLA", as_of=DAY, source="csv", source_detail="t",
                     bars=bars.iloc[:-3])
    assert quality.stale(old, DAY) == [
        "the last bar is 2025-05-28, not the partition day 2025-06-02"]


def _signal(entry: float, stop: float, target: float, action: str = "BUY") -> TradingSignal:
    return TradingSignal(
        symbol="TSLA", as_of=DAY, action=action, confidence_score=70, confidence_level="MEDIUM",
        reasoning="r", key_factors=["k"], trend="NEUTRAL", provider="p", model_name="m",
        entry_price=entry, stop_loss=stop, take_profit=target, position_size_pct=5)


def test_signal_risk_reward_minimum() -> None:
    assert quality.signal_level_problems(_signal(100, 95, 110), 1.5) == []
    assert quality.signal_level_problems(_signal(100, 95, 105), 1.5) == [
        "risk/reward 1.00 is below the minimum 1.5"]
    assert quality.signal_level_problems(_signal(100, 105, 90, "SELL"), 1.5) == []


def test_chart_size_and_format_are_checked() -> None:
    from trading_assets.charts.render import render_chart
    from trading_assets.models import ChartImage, Timeframe

    chart = render_chart(synthetic_bars("TSLA", DAY, 300).bars, symbol="TSLA", as_of=DAY,
                         timeframe=Timeframe.DAILY)
    assert quality.chart_problems(chart) == []
    small = ChartImage(**{**chart.model_dump(), "width": 640, "height": 480})
    assert quality.chart_problems(small) == ["image is 640x480, expected 1400x1000"]
    not_png = ChartImage(**{**chart.model_dump(), "png": b"GIF89a"})
    assert quality.chart_problems(not_png) == ["the stored bytes are not a PNG"]
