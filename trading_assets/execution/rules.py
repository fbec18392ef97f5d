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
    # Percent of equity one order may use, whatever the signal suggests (percent sizing).
    max_position_pct: float = 10.0
    # Pre-trade sanity of the model's prices (see price_problem).
    min_risk_reward: float = 1.5
    max_entry_deviation_pct: float = 5.0


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
    levels = level_problem(signal, limits.min_risk_reward)
    if levels:
        return NoOrder(f"not traded: {levels}")
    assert signal.entry_price and signal.stop_loss and signal.take_profit
    entry = signal.entry_price
    if limits.sizing == "fixed":
        wanted = limits.fixed_shares
        note = f"fixed {limits.fixed_shares} shares"
    else:
        pct = min(signal.position_size_pct, limits.max_position_pct)
        wanted = math.floor(equity * pct / 100 / entry)
        note = f"{pct:g}% of equity {equity:,.2f}"
        if pct < signal.position_size_pct:
            note += (f" (the signal's {signal.position_size_pct:g}% capped by MAX_POSITION_PCT="
                     f"{limits.max_position_pct:g})")

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


def level_problem(signal: TradingSignal, min_risk_reward: float) -> str | None:
    """Why a BUY/SELL signal's own levels must not be traded (None: they may).

    The same rule as the ``trading_signal_levels`` check, applied again on the order path: an
    ``order`` materialized on its own never ran that check.
    """
    if signal.action is Action.HOLD:
        return None
    entry, stop, target = signal.entry_price, signal.stop_loss, signal.take_profit
    if not (entry and stop and target):
        return f"the {signal.action.value} signal lacks an entry, stop loss or take profit"
    if signal.action is Action.BUY and not stop < entry < target:
        return (f"a BUY needs stop loss < entry < take profit, got stop {stop:g}, entry "
                f"{entry:g}, target {target:g}; the signal's levels are on the wrong sides")
    if signal.action is Action.SELL and not target < entry < stop:
        return (f"a SELL needs take profit < entry < stop loss, got target {target:g}, entry "
                f"{entry:g}, stop {stop:g}; the signal's levels are on the wrong sides")
    ratio = abs(target - entry) / abs(entry - stop)
    if ratio + 1e-9 < min_risk_reward:
        return (f"risk/reward {ratio:.2f} below MIN_RISK_REWARD {min_risk_reward:g} (entry "
                f"{entry:g}, stop {stop:g}, target {target:g}); lower MIN_RISK_REWARD to trade "
                "such signals")
    return None


def market_problem(
    signal: TradingSignal, *, latest_close: float, max_entry_deviation_pct: float
) -> str | None:
    """Why the signal's prices do not fit the market's latest close (None: they do).

    The model reads a chart and answers with numbers; a misread axis or a stale chart gives an
    entry far from the market, or a stop the market has already passed (it would fire at once).
    """
    if signal.action is Action.HOLD or not (signal.entry_price and signal.stop_loss):
        return None
    entry, stop = signal.entry_price, signal.stop_loss
    deviation = abs(entry - latest_close) / latest_close * 100
    if deviation > max_entry_deviation_pct + 1e-9:
        return (f"entry {entry:.2f} is {deviation:.1f}% from the latest close "
                f"{latest_close:.2f}, more than MAX_ENTRY_DEVIATION_PCT="
                f"{max_entry_deviation_pct:g}: the model's prices do not fit the market (a "
                "misread or stale chart?); re-run the analysis, or raise "
                "MAX_ENTRY_DEVIATION_PCT if entries that far away are intended")
    if signal.action is Action.BUY and stop >= latest_close:
        return (f"the BUY stop loss {stop:.2f} is at or above the latest close "
                f"{latest_close:.2f}: it would trigger at once; re-run the analysis")
    if signal.action is Action.SELL and stop <= latest_close:
        return (f"the SELL stop loss {stop:.2f} is at or below the latest close "
                f"{latest_close:.2f}: it would trigger at once; re-run the analysis")
    return None


def price_problem(signal: TradingSignal, *, latest_close: float, limits: RiskLimits) -> str | None:
    """The pre-trade sanity rule: the signal's levels, then how they sit against the market."""
    return level_problem(signal, limits.min_risk_reward) or market_problem(
        signal, latest_close=latest_close, max_entry_deviation_pct=limits.max_entry_deviation_pct
    )


def price_note(signal: TradingSignal, *, latest_close: float) -> str:
    """What the sanity rule saw, for a signal that passed it."""
    entry, stop, target = signal.entry_price, signal.stop_loss, signal.take_profit
    assert entry and stop and target
    deviation = abs(entry - latest_close) / latest_close * 100
    ratio = abs(target - entry) / abs(entry - stop)
    return (f"entry {entry:.2f} is {deviation:.1f}% from the latest close {latest_close:.2f}; "
            f"stop {stop:.2f} on the losing side of it; risk/reward {ratio:.2f}")
