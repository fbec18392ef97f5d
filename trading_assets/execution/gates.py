"""Pre-trade risk gates: hard limits checked right before an order goes out, each by name.

Sizing (rules.decide) already aims inside these limits; the gates are the independent last word
and are what the order asset's blocking checks report. A gate that fails means no order was sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trading_assets.execution.rules import OrderIntent, RiskLimits
from trading_assets.models import OrderSide

KILL_SWITCH = "order_kill_switch"
MAX_ORDERS_PER_DAY = "order_max_orders_per_day"
MAX_POSITION = "order_max_position"
MAX_NOTIONAL = "order_max_notional"
PRICE_SANITY = "order_price_sanity"

GATES: dict[str, str] = {
    KILL_SWITCH: "no order goes out while TRADING_KILL_SWITCH is on or the kill-switch file exists",
    MAX_ORDERS_PER_DAY: "at most MAX_ORDERS_PER_DAY orders per trading day, all symbols together",
    MAX_POSITION: "the position after the order stays within MAX_POSITION_NOTIONAL",
    MAX_NOTIONAL: "one order's notional stays within MAX_NOTIONAL_PER_ORDER",
    PRICE_SANITY: (
        "the signal's levels are on the right sides with risk/reward at MIN_RISK_REWARD, the "
        "entry is within MAX_ENTRY_DEVIATION_PCT of the latest close, and the stop is not "
        "already past it"
    ),
}


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    note: str


def clear(note: str) -> list[GateResult]:
    """Every gate passed because nothing was about to be sent."""
    return [GateResult(name, True, note) for name in GATES]


def kill_switch_reason(switch_on: bool, switch_file: str | None) -> str | None:
    """Why the kill switch is on, or None when it is off."""
    if switch_on:
        return "TRADING_KILL_SWITCH is on"
    if switch_file and Path(switch_file).exists():
        return f"the kill-switch file {Path(switch_file).resolve()} exists (delete it to resume)"
    return None


def evaluate(
    intent: OrderIntent,
    *,
    limits: RiskLimits,
    position_qty: float,
    orders_today: int,
    prices_note: str = "prices checked against the latest close",
) -> list[GateResult]:
    """The gates for an order about to be sent (the kill switch and the prices were checked
    before sizing: they only appear here as passed)."""
    results = [
        GateResult(KILL_SWITCH, True, "kill switch off"),
        GateResult(PRICE_SANITY, True, prices_note),
    ]
    if orders_today >= limits.max_orders_per_day:
        results.append(GateResult(
            MAX_ORDERS_PER_DAY, False,
            f"{orders_today} orders already placed today; MAX_ORDERS_PER_DAY="
            f"{limits.max_orders_per_day}",
        ))
    else:
        results.append(GateResult(
            MAX_ORDERS_PER_DAY, True,
            f"{orders_today + 1} of {limits.max_orders_per_day} orders today",
        ))
    signed = intent.quantity if intent.side is OrderSide.BUY else -intent.quantity
    after = abs(position_qty + signed) * intent.limit_price
    grows = abs(position_qty + signed) > abs(position_qty)
    if grows and after > limits.max_position_notional + 0.005:
        results.append(GateResult(
            MAX_POSITION, False,
            f"position after the order {position_qty + signed:g} shares = {after:,.2f} exceeds "
            f"MAX_POSITION_NOTIONAL={limits.max_position_notional:,.2f}",
        ))
    else:
        results.append(GateResult(
            MAX_POSITION, True,
            f"position after the order {after:,.2f} of {limits.max_position_notional:,.2f}",
        ))
    if intent.notional > limits.max_notional_per_order + 0.005:
        results.append(GateResult(
            MAX_NOTIONAL, False,
            f"order notional {intent.notional:,.2f} exceeds MAX_NOTIONAL_PER_ORDER="
            f"{limits.max_notional_per_order:,.2f}",
        ))
    else:
        results.append(GateResult(
            MAX_NOTIONAL, True,
            f"order notional {intent.notional:,.2f} of {limits.max_notional_per_order:,.2f}",
        ))
    return results


def blocked_by(gate: str, reason: str) -> list[GateResult]:
    """One gate stopped the order before the others were reached (sizing found no room under
    its limit, or the prices failed the sanity rule)."""
    notes = {KILL_SWITCH: "kill switch off", gate: reason}
    return [GateResult(name, name != gate, notes.get(name, "not reached")) for name in GATES]
