"""The market_data asset: daily bars for one symbol, ending at the partition's trading day."""

import datetime as dt

import dagster as dg

from resources.market_data import MarketDataResource
from trading_assets.calendar import check_closed_session
from trading_assets.execution.policies import BROKER_POOL, DOMAIN_ERRORS, NETWORK_RETRY, no_retry
from trading_assets.models import MarketData
from trading_assets.partitions import current_partition, symbol_day
from trading_assets.preflight import Preflight


@dg.asset(
    partitions_def=symbol_day,
    group_name="market",
    kinds={"pandas", "parquet"},
    description="Daily OHLCV bars ending at the partition date (never after), with their source.",
    retry_policy=NETWORK_RETRY,
    # Pools are static; an ibkr source shares order's IBKR_CLIENT_ID, other sources queue briefly.
    pool=BROKER_POOL,
)
def market_data(
    context: dg.AssetExecutionContext, market_source: MarketDataResource, preflight: Preflight
) -> MarketData:
    symbol, day = current_partition(context)
    try:
        check_closed_session(day, dt.datetime.now(dt.UTC))
    except ValueError as exc:
        # Nothing is broken but the choice of day: one line saying when it can run, no retry, no
        # traceback of a cause.
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    # The run's first step: every service the run uses answers, or nothing is fetched.
    preflight.require(context)
    try:
        data = market_source.fetch(symbol, day, log=context.log)
    except DOMAIN_ERRORS as exc:
        raise no_retry(exc) from exc
    if data.is_synthetic:
        context.log.warning(
            f"{symbol} {day}: synthetic market data ({data.source_detail}); "
            "signals from it are never sent to a broker"
        )
    bars = data.bars
    context.add_output_metadata(
        {
            "source": data.source,
            "source_detail": data.source_detail,
            "synthetic": data.is_synthetic,
            "bars": len(bars),
            "first_bar": str(bars.index[0].date()),
            "last_bar": str(bars.index[-1].date()),
            "latest_close": data.latest_close,
        }
    )
    return data
