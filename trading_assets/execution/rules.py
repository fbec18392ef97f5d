"""Pre-trade rules: whether a signal becomes an order, and how many shares, before any broker."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Literal

from trading_assets.models import Action, OrderSide, TradingSignal


@dataclass(frozen=True)
class RiskLimits:
    sizing: Literal["percent", "fixed"] = "percent"
    fixed_shares: int = 10
    max_notional_per_order: float = 25_000.0
    max_position_notional: float = 50_000.0
    allow_short: bool = False
    max_orders_per_day: int = 10


@dataclass(frozen=True)
class OrderIntent:
    side: OrderSide
    quantity: int
    limit_price: float
    stop_loss: float
    take_profit: float
    sizing_note: str


    @property
    def notional(self) -> float:
        return self.quantity * self.limit_price


@dataclass(frozen=True)
class NoOrder:
    reason: str
    gate: str | None = None  # the risk gate whose limit left no room, if that is why


def order_ref(symbol: str, day: dt.date | str, action: str | None = None) -> str:
    """The reference of this symbol and trading day's order, optionally with the signal's side.

    Everything before the side is the partition's: brokers are searched by that prefix, so a
    changed signal on a re-run still finds (and never duplicates) the day's order.
    """
    base = f"ts:{symbol}:{day}"
    return f"{base}:{action}" if action else base


def decide(
    signal: TradingSignal,
    *,
    limits: RiskLimits,
    equity: float,
    position_qty: float,
) -> OrderIntent | NoOrder:
    """Turn a signal into an order intent, or say exactly why there is none."""
    if signal.action is Action.HOLD:
        return NoOrder("HOLD signal: nothing to do")
    if not signal.actionable:
        return NoOrder(
            f"low confidence: {signal.confidence_score:g} is below the threshold "
            f"{signal.min_confidence_score:g}"
        )
    assert signal.entry_price and signal.stop_loss and signal.take_profit
    entry = signal.entry_price
    if limits.sizing == "fixed":
        wanted = limits.fixed_shares
        note = f"fixed {limits.fixed_shares} shares"
    else:
        wanted = math.floor(equity * signal.position_size_pct / 100 / entry)
        note = f"{signal.position_size_pct:g}% of equity {equity:,.2f}"

    side = OrderSide.BUY if signal.action is Action.BUY else OrderSide.SELL
    caps = {"max notional per order": math.floor(limits.max_notional_per_order / entry)}
    if side is OrderSide.BUY:
        held_notional = max(position_qty, 0) * entry
        caps["max position"] = math.floor((limits.max_position_notional - held_notional) / entry)
    elif not limits.allow_short:
        if position_qty <= 0:
            return NoOrder("SELL signal but no long position to sell (short selling is off)")
        caps["position held"] = math.floor(position_qty)
    quantity = min(wanted, *caps.values())
    capped_by = [name for name, cap in caps.items() if cap < wanted and cap == quantity]
    if capped_by:
        note += f", capped by {capped_by[0]} to {max(quantity, 0)}"
    if quantity <= 0:
        gate = {"max position": "order_max_position", "max notional per order": (
            "order_max_notional")}.get(capped_by[0] if capped_by else "")
        return NoOrder(f"risk gate: size is zero shares ({note})", gate=gate)
    return OrderIntent(
        side=side,
        quantity=quantity,
        limit_price=round(entry, 2),
        stop_loss=round(signal.stop_loss, 2),
        take_profit=round(signal.take_profit, 2),
        sizing_note=note,
    )
