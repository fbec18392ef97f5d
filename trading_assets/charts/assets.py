"""The daily_chart and weekly_chart assets: PNG candlestick charts with indicator panels."""

import dagster as dg

from trading_assets.charts.render import render_chart, weekly_bars
from trading_assets.models import ChartImage, MarketData, Timeframe
from trading_assets.partitions import symbol_day

DAILY_BARS_SHOWN = 130
WEEKLY_BARS_SHOWN = 104


def _describe(chart: ChartImage) -> dict[str, str | int]:
    return {
        "size_px": f"{chart.width}x{chart.height}",
        "bars_shown": chart.bars_shown,
        "indicators": ", ".join(chart.indicators),
        "omitted_indicators": ", ".join(chart.omitted_indicators) or "none",
    }


@dg.asset(
    partitions_def=symbol_day,
    group_name="charts",
    kinds={"matplotlib"},
    description="Daily candles, volume, SMA 20/50/200, Bollinger Bands, RSI and MACD panels.",
)
def daily_chart(context: dg.AssetExecutionContext, market_data: MarketData) -> ChartImage:
    chart = render_chart(
        market_data.bars,
        symbol=market_data.symbol,
        as_of=market_data.as_of,
        timeframe=Timeframe.DAILY,
        bars_shown=DAILY_BARS_SHOWN,
    )
    context.add_output_metadata(_describe(chart))
    return chart


@dg.asset(
    partitions_def=symbol_day,
    group_name="charts",
    kinds={"matplotlib"},
    description="The same chart on weekly bars resampled from the daily bars.",
)
def weekly_chart(context: dg.AssetExecutionContext, market_data: MarketData) -> ChartImage:
    chart = render_chart(
        weekly_bars(market_data.bars),
        symbol=market_data.symbol,
        as_of=market_data.as_of,
        timeframe=Timeframe.WEEKLY,
        bars_shown=WEEKLY_BARS_SHOWN,
    )
    context.add_output_metadata(_describe(chart))
    return chart
