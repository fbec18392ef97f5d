"""How a bracket order fills on a daily bar: plain rules shared by the paper simulator and the
evaluation of signals, so both read a bar the same way.

A daily bar says where the price went, not in which order, so every rule takes the reading that
is worse for the trader:

- a limit entry fills only when the session trades *through* the limit (a touch may not fill:
  others were ahead in the queue); at the open when the open is already through it;
- a stop triggers on a touch and fills at the stop, or at the open when the open gapped past it;
- a take profit (a limit) fills only when the session trades through it, or at the open when the
  open gapped past it;
- a bar that reaches both the stop and the target counts the stop;
- on the bar the entry fills, only the stop can trigger (the target could have come first, but
  nothing says it did).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from trading_assets.execution.costs import FillKind
from trading_assets.models import OrderSide

ExitLeg = Literal["stop_loss", "take_profit"]


@dataclass(frozen=True)
class Bar:
    open: float
    high: float
    low: float
    close: float


@dataclass(frozen=True)
class EntryFill:
    raw_price: float  # before slippage
    at_open: bool  # the open was already through the limit


@dataclass(frozen=True)
class ExitFill:
    leg: ExitLeg
    raw_price: float  # before slippage
    kind: FillKind  # the stop fills as a market order, the take profit as a limit
    at_open: bool  # the open gapped past the level
    spanned_both: bool  # the bar reached both stop and target: the stop was counted


def entry_fill(side: OrderSide, limit: float, bar: Bar) -> EntryFill | None:
    """The entry's fill on ``bar``, or None when the bar did not trade through the limit."""
    if side is OrderSide.BUY:
        if bar.open <= limit:
            return EntryFill(bar.open, at_open=True)
        return EntryFill(limit, at_open=False) if bar.low < limit else None
    if bar.open >= limit:
        return EntryFill(bar.open, at_open=True)
    return EntryFill(limit, at_open=False) if bar.high > limit else None


def exit_fill(
    entry_side: OrderSide, stop: float, target: float, bar: Bar, *,
    entry_price: float | None = None,
) -> ExitFill | None:
    """Which exit of a bracket opened on ``entry_side`` fills on ``bar``, if any.

    ``entry_price``: the entry filled on this very bar at that price, so only the stop may
    trigger, and never at a better price than the entry (an entry at an open already past the
    stop is stopped out at once, at the entry's price).
    """
    long = entry_side is OrderSide.BUY
    stop_hit = bar.low <= stop if long else bar.high >= stop
    target_hit = bar.high > target if long else bar.low < target
    if entry_price is not None:
        if not stop_hit:
            return None
        raw = min(stop, entry_price) if long else max(stop, entry_price)
        return ExitFill("stop_loss", raw, "market", at_open=raw != stop, spanned_both=False)
    if stop_hit:
        gapped = bar.open <= stop if long else bar.open >= stop
        return ExitFill(
            "stop_loss", bar.open if gapped else stop, "market", at_open=gapped,
            spanned_both=target_hit,
        )
    if target_hit:
        gapped = bar.open >= target if long else bar.open <= target
        return ExitFill(
            "take_profit", bar.open if gapped else target, "limit", at_open=gapped,
            spanned_both=False,
        )
    return None


def exit_side(entry_side: OrderSide) -> OrderSide:
    return OrderSide.SELL if entry_side is OrderSide.BUY else OrderSide.BUY
