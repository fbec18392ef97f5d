"""Bracket exits and the shares they protect: working exits never add up to more than is held.

A bracket's stop loss and take profit are one-cancels-other, so a bracket's exits trade at most
its quantity once. A later order that reduces or closes the position must first shrink (or
cancel) the exits still working for that symbol; otherwise an exit that fills afterwards sells
shares that are no longer there and leaves the account short. Plain code, used by both venues.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from trading_assets.models import OrderSide

# IBKR ocaType 1: when one order of the group fills, cancel the rest (with overfill protection).
OCA_CANCEL_WITH_BLOCK = 1


@dataclass(frozen=True)
class WorkingExits:
    """The working stop loss and take profit of one earlier bracket."""

    key: str  # identifies the bracket at its venue (its order reference)
    side: OrderSide  # the side the exits trade: SELL protects a long position
    quantity: float  # shares the bracket's exits would trade (one of them, not both)


@dataclass(frozen=True)
class ExitChange:
    key: str
    quantity: float  # the new size; 0 cancels the bracket's exits

    @property
    def cancels(self) -> bool:
        return self.quantity <= 0


def oca_group(ref: str) -> str:
    """The one-cancels-other group of the bracket with order reference ``ref``."""
    return f"{ref}:exits"


def opens_position(side: OrderSide, position: float) -> bool:
    """Whether an order on ``side`` opens or adds (a bracket), not reduces (a plain limit)."""
    return (side is OrderSide.BUY and position >= 0) or (side is OrderSide.SELL and position <= 0)


def exit_room(position: float, side: OrderSide, quantity: float) -> dict[OrderSide, float]:
    """How many shares the earlier brackets' exits of each side may trade once the order fills.

    An opening order brings its own exits for its own shares, so the earlier exits keep covering
    only today's position. A reducing order leaves ``position -/+ quantity``: the earlier exits
    must shrink to that before it is sent.
    """
    rest = position
    if not opens_position(side, position):
        rest = position + (quantity if side is OrderSide.BUY else -quantity)
    return {OrderSide.SELL: max(rest, 0.0), OrderSide.BUY: max(-rest, 0.0)}


def exit_changes(
    working: Sequence[WorkingExits], room: Mapping[OrderSide, float]
) -> list[ExitChange]:
    """The resizes and cancels that fit each side's working exits into its room.

    ``working`` is oldest first; the oldest brackets shrink first (their shares are the first
    sold, as in FIFO lot accounting). Brackets that already fit are left alone.
    """
    changes: list[ExitChange] = []
    for side in OrderSide:
        brackets = [w for w in working if w.side is side]
        excess = sum(w.quantity for w in brackets) - room.get(side, 0.0)
        for bracket in brackets:
            if excess <= 1e-9:
                break
            cut = min(bracket.quantity, excess)
            changes.append(ExitChange(bracket.key, max(bracket.quantity - cut, 0.0)))
            excess -= cut
    return changes
