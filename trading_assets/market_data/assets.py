"""The market_data asset: daily bars for one symbol, ending at the partition's trading day."""

import datetime as dt
from typing import Any

import dagster as dg

from resources.market_data import MarketDataResource
from trading_assets.calendar import check_closed_session
from trading_assets.execution.policies import BROKER_POOL, DOMAIN_ERRORS, NETWORK_RETRY, no_retry
from trading_assets.models import MarketData
from trading_assets.partitions import symbol_day
from trading_assets.preflight import Preflight
from trading_assets.ranged import (
    RANGED,
    Partition,
    PerPartition,
    each,
    partitions,
    per_partition_type,
)


@dg.asset(
    partitions_def=symbol_day,
    group_name="market",
    kinds={"pandas", "parquet"},
    description="Daily OHLCV bars ending at the partition date (never after), with their source.",
    retry_policy=NETWORK_RETRY,
    # Pools are static; an ibkr source shares order's IBKR_CLIENT_ID, other sources queue briefly.
    pool=BROKER_POOL,
    backfill_policy=RANGED,
    dagster_type=per_partition_type(MarketData),
)
def market_data(
    context: dg.AssetExecutionContext, market_source: MarketDataResource, preflight: Preflight
) -> PerPartition[MarketData]:
    now = dt.datetime.now(dt.UTC)
    for partition in partitions(context):
        try:
            check_closed_session(partition.day, now)
        except ValueError as exc:
            # Nothing is broken but the choice of day: one line saying when it can run, no
            # retry, no traceback of a cause.
            raise dg.Failure(description=str(exc), allow_retries=False) from None
    # The run's first step: every service the run uses answers, or nothing is fetched.
    preflight.require(context)
    synthetic: list[str] = []
    values = each(context, lambda p: _fetch(context, market_source, p, synthetic))
    if synthetic:
        # One line per step, not per day: each log line is an event-log write.
        which = synthetic[0] if len(synthetic) == 1 else (
            f"{len(synthetic)} partitions ({synthetic[0]} to {synthetic[-1]})"
        )
        context.log.warning(f"{which}; signals from it are never sent to a broker")
    return values


def _fetch(
    context: dg.AssetExecutionContext,
    market_source: MarketDataResource,
    partition: Partition,
    synthetic: list[str],
) -> tuple[MarketData, dict[str, Any]]:
    symbol, day = partition.symbol, partition.day
    try:
        data = market_source.fetch(symbol, day, log=context.log)
    except DOMAIN_ERRORS as exc:
        raise no_retry(exc) from exc
    if data.is_synthetic:
        synthetic.append(f"{symbol} {day}: synthetic market data ({data.source_detail})")
    bars = data.bars
    return data, {
        "source": data.source,
        "source_detail": data.source_detail,
        "synthetic": data.is_synthetic,
        "bars": len(bars),
        "first_bar": str(bars.index[0].date()),
        "last_bar": str(bars.index[-1].date()),
        "latest_close": data.latest_close,
    }
