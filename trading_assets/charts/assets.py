"""The daily_chart and weekly_chart assets: PNG candlestick charts with indicator panels."""

from collections.abc import Callable

import dagster as dg

from trading_assets.models import ChartImage, MarketData, Timeframe
from trading_assets.partitions import symbol_day
from trading_assets.ranged import (
    RANGED,
    Partition,
    PerPartition,
    each,
    is_ranged,
    per_partition_type,
    value_for,
)

DAILY_BARS_SHOWN = 130
WEEKLY_BARS_SHOWN = 104


def _describe(chart: ChartImage) -> dict[str, str | int]:
    return {
        "size_px": f"{chart.width}x{chart.height}",
        "bars_shown": chart.bars_shown,
        "indicators": ", ".join(chart.indicators),
        "omitted_indicators": ", ".join(chart.omitted_indicators) or "none",
    }


# The renderer (and Matplotlib under it, about 0.35 s) is imported by the first chart step, not
# by every process that loads the code location (the webserver, the daemon, each run worker).
def _daily(data: MarketData) -> ChartImage:
    from trading_assets.charts.render import render_chart

    return render_chart(
        data.bars, symbol=data.symbol, as_of=data.as_of, timeframe=Timeframe.DAILY,
        bars_shown=DAILY_BARS_SHOWN,
    )


def _weekly(data: MarketData) -> ChartImage:
    from trading_assets.charts.render import render_chart, weekly_bars

    return render_chart(
        weekly_bars(data.bars), symbol=data.symbol, as_of=data.as_of, timeframe=Timeframe.WEEKLY,
        bars_shown=WEEKLY_BARS_SHOWN,
    )


def _charts(
    context: dg.AssetExecutionContext,
    market_data: PerPartition[MarketData],
    render: Callable[[MarketData], ChartImage],
) -> PerPartition[ChartImage]:
    ranged = is_ranged(context)

    def produce(partition: Partition) -> tuple[ChartImage, dict[str, str | int]]:
        chart = render(value_for(market_data, partition, ranged))
        return chart, _describe(chart)

    return each(context, produce)


@dg.asset(
    partitions_def=symbol_day,
    group_name="charts",
    kinds={"matplotlib"},
    description="Daily candles, volume, SMA 20/50/200, Bollinger Bands, RSI and MACD panels.",
    backfill_policy=RANGED,
    dagster_type=per_partition_type(ChartImage),
)
def daily_chart(
    context: dg.AssetExecutionContext, market_data: PerPartition[MarketData]
) -> PerPartition[ChartImage]:
    return _charts(context, market_data, _daily)


@dg.asset(
    partitions_def=symbol_day,
    group_name="charts",
    kinds={"matplotlib"},
    description="The same chart on weekly bars resampled from the daily bars.",
    backfill_policy=RANGED,
    dagster_type=per_partition_type(ChartImage),
)
def weekly_chart(
    context: dg.AssetExecutionContext, market_data: PerPartition[MarketData]
) -> PerPartition[ChartImage]:
    return _charts(context, market_data, _weekly)
