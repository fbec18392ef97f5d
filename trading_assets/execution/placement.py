"""At most one order per symbol and trading day: every reason not to send one, then the gates.

Plain code, no Dagster: the order asset gathers the facts into an ``OrderRequest`` and records
what ``place_once`` decided and which risk gates it evaluated.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from trading_assets.execution import gates
from trading_assets.execution.gates import GateResult
from trading_assets.execution.rules import (
    NoOrder,
    RiskLimits,
    decide,
    order_ref,
    price_note,
    price_problem,
)
from trading_assets.execution.venue import Venue
from trading_assets.models import MarketData, OrderDecision, TradingSignal

BROKER_MODES = ("ibkr-paper", "ibkr-live")


@dataclass(frozen=True)
class OrderRequest:
    symbol: str
    day: dt.date
    mode: str
    signal: TradingSignal
    market: MarketData
    limits: RiskLimits
    trading_enabled: bool = True
    kill_switch: str | None = None  # why the kill switch is on
    backfill: str | None = None  # the run tag that marks a backfill
    latest_session: dt.date | None = None  # the latest completed session when the run started
    # Artifacts of this partition only in the local spool (a store was down): unverified inputs.
    spooled: tuple[str, ...] = ()
    # Why the artifact stores do not answer (None: both do). Nothing is sent then: the order
    # could not be recorded. An order already at the broker is still found and recorded.
    stores_down: str | None = None
    # simulate mode: a later day of the symbol the simulator's account has already worked
    # through (a backfill ran days out of order). Deciding this day now would rewrite history.
    simulator_ahead: dt.date | None = None


def _not_placed(req: OrderRequest, reason: str) -> OrderDecision:
    return OrderDecision(symbol=req.symbol, as_of=req.day, placed=False, reason=reason,
                         mode=req.mode)


def _never_to_broker(req: OrderRequest) -> str | None:
    """Why this partition's order must not reach a real broker (None: it may)."""
    if req.mode not in BROKER_MODES:
        return None
    if req.backfill:
        return (f"not traded: backfill run ({req.backfill}); a backfill never sends orders to "
                "a broker")
    if req.market.is_synthetic:
        return "not traded: synthetic market data"
    if req.latest_session is None or req.day != req.latest_session:
        return (f"not traded: historical partition {req.day} (the latest completed session is "
                f"{req.latest_session}); only that session's orders go to a broker")
    return None


def _already_at(venue: Venue, req: OrderRequest) -> tuple[OrderDecision, list[GateResult]] | None:
    """The partition's order as the broker has it, recorded as reused; None if there is none."""
    existing = venue.existing_order(req.symbol, req.day)
    if existing is None:
        return None
    decision = OrderDecision(
        symbol=req.symbol, as_of=req.day, placed=True, mode=req.mode, order=existing,
        reason=f"already placed at {venue.name} ({existing.order_ref}); not placed again",
        fills=venue.fills_for(existing.order_ref), reused_existing=True,
    )
    return decision, gates.clear("an order already exists for this partition; none sent")


def place_once(
    req: OrderRequest,
    *,
    prior: OrderDecision | None,
    open_venue: Callable[[], AbstractContextManager[Venue]],
) -> tuple[OrderDecision, list[GateResult]]:
    """The partition's order decision and the gate results behind it.

    ``prior`` is the newest stored order artifact of the partition that placed an order; in the
    same mode it is returned as is, without contacting anyone.
    """
    if prior is not None and prior.placed and prior.order is not None and prior.mode == req.mode:
        reused = prior.model_copy(update={
            "reused_existing": True,
            "reason": f"already placed ({prior.order.order_ref}); not placed again",
        })
        return reused, gates.clear("an order already exists for this partition; none sent")
    blocked = _never_to_broker(req)
    if blocked:
        return _not_placed(req, blocked), gates.clear("nothing sent to a broker")
    if req.simulator_ahead is not None:
        with open_venue() as venue:
            found = _already_at(venue, req)
        if found is not None:
            return found
        reason = (
            f"not traded: the simulator's {req.symbol} account is already at "
            f"{req.simulator_ahead}, after {req.day} (a later day ran first); an order dated "
            f"{req.day} now would change a history later days were decided on. Run a symbol's "
            "days in date order: a backfill with more days than symbols runs each symbol's days "
            "in one run, oldest first"
        )
        return _not_placed(req, reason), gates.clear("simulator ahead of this day; nothing sent")
    if req.spooled or req.stores_down:
        # Whatever the spool or the stores hold, the broker knows whether the order went out
        # (e.g. it did, and only its artifact was spooled): that is what gets recorded.
        with open_venue() as venue:
            found = _already_at(venue, req)
        if found is not None:
            return found
        if req.stores_down:
            reason = (
                f"not sent: the artifact stores do not answer ({req.stores_down}), so the order "
                "could not be recorded; fix the store, then re-materialize order"
            )
            return _not_placed(req, reason), gates.clear("artifact stores down; nothing sent")
        reason = (
            f"not traded: {len(req.spooled)} artifact(s) of this partition are only in the local "
            f"spool, not verified in the stores ({', '.join(req.spooled)}); run `trading-signals "
            "reconcile` once the stores are back, then re-materialize order"
        )
        return _not_placed(req, reason), gates.clear("inputs not in the stores; nothing sent")
    if not req.trading_enabled:
        return _not_placed(req, "trading disabled (TRADING_ENABLED=false)"), gates.clear(
            "trading disabled; nothing sent")
    wants_order = req.signal.actionable and req.signal.action.value != "HOLD"
    if req.kill_switch and wants_order:
        reason = f"not traded: kill switch ({req.kill_switch})"
        return _not_placed(req, reason), [
            GateResult(name, name != gates.KILL_SWITCH,
                       reason if name == gates.KILL_SWITCH else "not reached")
            for name in gates.GATES
        ]

    with open_venue() as venue:
        partition_ref = order_ref(req.symbol, req.day)
        found = _already_at(venue, req)
        if found is not None:
            return found
        if not wants_order:
            intent = decide(req.signal, limits=req.limits, equity=0.0, position_qty=0.0)
            reason = intent.reason if isinstance(intent, NoOrder) else "no order"
            return _not_placed(req, reason), gates.clear("no order wanted; none sent")
        # The model's prices are checked against the market before anything is sized or sent.
        close = req.market.latest_close
        problem = price_problem(req.signal, latest_close=close, limits=req.limits)
        if problem:
            reason = f"not traded: {problem}"
            return _not_placed(req, reason), gates.blocked_by(gates.PRICE_SANITY, reason)
        position = venue.position(req.symbol, req.day)
        intent = decide(
            req.signal, limits=req.limits, equity=venue.equity(req.day), position_qty=position
        )
        if isinstance(intent, NoOrder):
            if intent.gate:
                reason = f"not traded: risk gate {intent.gate}: {intent.reason}"
                return _not_placed(req, reason), gates.blocked_by(intent.gate, reason)
            return _not_placed(req, intent.reason), gates.clear(f"no order: {intent.reason}")
        results = gates.evaluate(
            intent, limits=req.limits, position_qty=position,
            orders_today=venue.orders_placed_on(req.day),
            prices_note=price_note(req.signal, latest_close=close),
        )
        tripped = [g for g in results if not g.passed]
        if tripped:
            reason = "; ".join(f"risk gate {g.name}: {g.note}" for g in tripped)
            return _not_placed(req, f"not traded: {reason}"), results
        ref = order_ref(req.symbol, req.day, intent.side.value)
        assert ref.startswith(partition_ref)
        ticket, created = venue.submit(ref, req.symbol, req.day, intent, req.market.latest_close)
        data_note = "synthetic data, simulator only" if req.market.is_synthetic else "real data"
        decision = OrderDecision(
            symbol=req.symbol, as_of=req.day, placed=True, mode=req.mode, order=ticket,
            reason=(
                f"{intent.side.value} {intent.quantity} {req.symbol} limit {intent.limit_price} "
                f"({intent.sizing_note}; {data_note})"
            ),
            fills=venue.fills_for(ticket.order_ref), reused_existing=not created,
        )
        return decision, results
