"""The order and portfolio assets: at most one order per symbol and day, then the account.

The pre-trade risk gates run inside ``order`` before anything is sent and are reported as its
blocking checks: a gate that fails has already kept the order from going out, and its failed
check stops ``portfolio`` and fails the run so someone looks.
"""

import datetime as dt
import warnings
from typing import Any

import dagster as dg

from io_managers.artifact_store import ArtifactStore
from io_managers.artifacts import Artifacts
from io_managers.spool import ArtifactSpool
from resources.broker import BrokerResource
from resources.trading_policy import TradingPolicy
from trading_assets.calendar import latest_completed_session
from trading_assets.execution import gates
from trading_assets.execution.placement import OrderRequest, place_once
from trading_assets.execution.policies import (
    BROKER_POOL,
    DOMAIN_ERRORS,
    NETWORK_RETRY,
    no_retry,
)
from trading_assets.execution.rules import order_ref
from trading_assets.models import MarketData, OrderDecision, PortfolioSnapshot, TradingSignal
from trading_assets.partitions import symbol_day
from trading_assets.ranged import (
    RANGED,
    Partition,
    PerPartition,
    each,
    is_ranged,
    partitions,
    per_partition_type,
    summarize,
    value_for,
)
from trading_assets.tags import backfill_tag

# A store that does not answer within this long is down, as far as sending an order goes.
STORE_PING_SECONDS = 10.0

with warnings.catch_warnings():
    # Partitioned checks are a Dagster preview (see checks.py): each result belongs to its day.
    warnings.simplefilter("ignore", dg.PreviewWarning)
    RISK_GATE_CHECKS = [
        dg.AssetCheckSpec(
            name, asset="order", blocking=True, description=guards, partitions_def=symbol_day
        )
        for name, guards in gates.GATES.items()
    ]


def gate_severity(gate: str) -> dg.AssetCheckSeverity:
    """Every gate stops the order inside this step; only the kill switch also stops the run.

    A limit that is reached (position, notional, orders per day) is a normal day for a trading
    system: the order is not sent, the check shows why, and the portfolio is still snapshotted.
    The kill switch is an emergency stop: the run fails after the order step, so the failure
    alert fires and nothing downstream pretends it was a normal day.
    """
    if gate == gates.KILL_SWITCH:
        return dg.AssetCheckSeverity.ERROR
    return dg.AssetCheckSeverity.WARN


def placed_order_artifact(store: ArtifactStore, symbol: str, day: dt.date) -> OrderDecision | None:
    """The newest stored order of the partition that placed one, if any (newest by the time it
    was produced, as ``ArtifactDatabase.query`` orders: a replayed row is not newer)."""
    rows = store.database.query(symbol=symbol, partition_date=day, step_name="order", limit=1000)
    for row in rows:
        if (row.artifact_metadata or {}).get("placed"):
            value = store.load(row)
            assert isinstance(value, OrderDecision)
            return value
    return None


@dg.asset(
    partitions_def=symbol_day,
    group_name="execution",
    kinds={"python"},
    description="The order placed (a bracket from the signal), or the explicit reason none was.",
    check_specs=RISK_GATE_CHECKS,
    # The value travels inside a MaterializeResult or Output (beside the gate results): name its
    # type.
    dagster_type=per_partition_type(OrderDecision),
    retry_policy=NETWORK_RETRY,
    pool=BROKER_POOL,
    backfill_policy=RANGED,
)
def order(
    context: dg.AssetExecutionContext,
    broker: BrokerResource,
    policy: TradingPolicy,
    artifacts: Artifacts,
    trading_signal: PerPartition[TradingSignal],
    market_data: PerPartition[MarketData],
) -> dg.MaterializeResult:
    ranged = is_ranged(context)
    store, spool = artifacts.store(context.log), artifacts.spool
    decisions: dict[str, OrderDecision] = {}
    gate_results: list[tuple[str, dg.AssetCheckResult]] = []
    # Oldest day first for each symbol: the simulator's account only ever moves forward.
    for partition in partitions(context):
        decision, results = _decide(
            context, broker, policy, store, spool, partition,
            value_for(trading_signal, partition, ranged), value_for(market_data, partition, ranged),
        )
        if not decision.placed and not ranged:
            context.log.info(f"{partition.symbol} {partition.day}: no order ({decision.reason})")
        context.add_asset_metadata(
            order_metadata(decision, partition.symbol, partition.day, decision.mode),
            partition_key=partition.key,
        )
        decisions[partition.key] = decision
        gate_results += [(partition.key, _gate_result(g)) for g in results]
    if not ranged:
        return dg.MaterializeResult(
            value=next(iter(decisions.values())), check_results=[r for _, r in gate_results]
        )
    # A ranged run: the decisions by partition; each gate once for the range (ranged.summarize).
    return dg.MaterializeResult(value=decisions, check_results=summarize(gate_results))


def _gate_result(gate: gates.GateResult) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key="order",
        check_name=gate.name,
        passed=gate.passed,
        severity=gate_severity(gate.name),
        description=gate.note,
    )


def _decide(
    context: dg.AssetExecutionContext,
    broker: BrokerResource,
    policy: TradingPolicy,
    store: ArtifactStore,
    spool: ArtifactSpool,
    partition: Partition,
    trading_signal: TradingSignal,
    market_data: MarketData,
) -> tuple[OrderDecision, list[gates.GateResult]]:
    symbol, day, partition_key = partition.symbol, partition.day, partition.key
    try:
        mode = broker.trading_mode()
        ahead = None
        if mode == "simulate":
            # Asked before this day's bars move the account: has it seen a later day already?
            ahead = broker.paper().later_day(symbol, day)
            # The simulator works its open orders through every day's bars, order or not.
            broker.paper().prepare(market_data)
        # Asked before an order may be sent: one sent while a store is down could not be
        # recorded (its artifact would only be in the local spool).
        stores_down = store.unanswered(STORE_PING_SECONDS)
        target = store.target()
        for entry in spool.elsewhere_for(partition_key, target):
            # Spooled under another configuration: it never reaches these stores, so it neither
            # blocks this partition nor goes unmentioned.
            context.log.warning(
                f"{entry.describe()} waits in the spool for other stores ({entry.target}); it "
                f"does not hold back {partition_key} here ({target})"
            )
        request = OrderRequest(
            symbol=symbol,
            day=day,
            mode=mode,
            signal=trading_signal,
            market=market_data,
            limits=policy.limits(),
            trading_enabled=policy.trading_enabled,
            kill_switch=policy.kill_switch_reason(),
            backfill=backfill_tag(dict(context.run.tags)),
            latest_session=latest_completed_session(dt.datetime.now(dt.UTC)),
            spooled=tuple(
                e.record.step_name or e.record.name
                for e in spool.pending_for(partition_key, target)
            ),
            stores_down=stores_down,
            simulator_ahead=ahead,
        )
        # With the database down the stored orders cannot be read: the broker is asked instead.
        prior = None if stores_down else placed_order_artifact(store, symbol, day)
        return place_once(request, prior=prior, open_venue=lambda: broker.venue(context.log))
    except DOMAIN_ERRORS as exc:
        raise no_retry(exc) from exc


def order_metadata(
    decision: OrderDecision, symbol: str, day: dt.date, mode: str
) -> dict[str, Any]:
    """What was decided, and the ticket's size and limit as numbers the Plots tab can chart."""
    ticket = decision.order
    metadata: dict[str, Any] = {
        "placed": decision.placed,
        "reason": decision.reason,
        "order_ref": ticket.order_ref if ticket else order_ref(symbol, day),
        "mode": mode,
        "reused_existing": decision.reused_existing,
        "fills": len(decision.fills),
    }
    if ticket is not None:
        metadata["quantity"] = float(ticket.quantity)
        metadata["limit_price"] = round(ticket.limit_price, 2)
    return metadata


def _not_read(symbol: str, day: dt.date, mode: str, why: str) -> PortfolioSnapshot:
    return PortfolioSnapshot(
        as_of=day, symbol=symbol, source=f"{mode}: not read ({why})", cash=0.0, positions=[],
        total_value=0.0, unrealized_pnl=0.0, realized_pnl=0.0, read=False,
    )


@dg.asset(
    partitions_def=symbol_day,
    group_name="execution",
    kinds={"python"},
    description="Positions, cash, total value, P&L and the day's fills after this order.",
    retry_policy=NETWORK_RETRY,
    pool=BROKER_POOL,
    backfill_policy=RANGED,
    dagster_type=per_partition_type(PortfolioSnapshot),
)
def portfolio(
    context: dg.AssetExecutionContext, broker: BrokerResource, order: PerPartition[OrderDecision]
) -> PerPartition[PortfolioSnapshot]:
    ranged = is_ranged(context)
    backfill = backfill_tag(dict(context.run.tags))
    latest = latest_completed_session(dt.datetime.now(dt.UTC))

    def produce(partition: Partition) -> tuple[PortfolioSnapshot, dict[str, Any]]:
        decision = value_for(order, partition, ranged)
        snapshot = _snapshot(context, broker, partition, backfill, latest)
        return snapshot, {
            "source": snapshot.source,
            "read": snapshot.read,
            "total_value": snapshot.total_value,
            "cash": snapshot.cash,
            "positions": len(snapshot.positions),
            "unrealized_pnl": snapshot.unrealized_pnl,
            "realized_pnl": snapshot.realized_pnl,
            "fills_today": len(snapshot.fills_today),
            "order_placed": decision.placed,
        }

    return each(context, produce)


def _snapshot(
    context: dg.AssetExecutionContext,
    broker: BrokerResource,
    partition: Partition,
    backfill: str | None,
    latest: dt.date,
) -> PortfolioSnapshot:
    symbol, day = partition.symbol, partition.day
    try:
        mode = broker.trading_mode()
        if mode != "simulate" and backfill:
            return _not_read(symbol, day, mode, f"backfill run {backfill}; no broker contact")
        if mode != "simulate" and day != latest:
            return _not_read(symbol, day, mode, f"historical partition; latest is {latest}")
        with broker.venue(context.log) as venue:
            return venue.snapshot(day, symbol)
    except DOMAIN_ERRORS as exc:
        raise no_retry(exc) from exc
