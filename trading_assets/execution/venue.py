"""What the order and portfolio assets need from wherever orders go: the simulator or IBKR."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from trading_assets.execution.rules import OrderIntent
from trading_assets.models import Fill, OrderTicket, PortfolioSnapshot


class Venue(Protocol):
    name: str

    def existing_order(self, symbol: str, day: dt.date) -> OrderTicket | None:
        """The order of this symbol and trading day, if one was ever placed."""

    def orders_between(self, start: dt.date, end: dt.date) -> list[OrderTicket]:
        """Every order this pipeline placed for trading days [start, end] (read only)."""

    def fills_for(self, ref: str) -> list[Fill]: ...

    def equity(self, day: dt.date) -> float: ...

    def position(self, symbol: str, day: dt.date) -> float: ...

    def orders_placed_on(self, day: dt.date) -> int:
        """How many symbol-day orders this pipeline placed for trading day ``day``."""

    def submit(
        self, ref: str, symbol: str, day: dt.date, intent: OrderIntent, close: float
    ) -> tuple[OrderTicket, bool]:
        """Place the order once; (ticket, created). A repeat returns the original."""

    def snapshot(self, day: dt.date, symbol: str) -> PortfolioSnapshot: ...


def partition_of_ref(ref: str) -> tuple[str, dt.date] | None:
    """(symbol, trading day) of an order reference ``ts:<SYMBOL>:<date>[:<SIDE>]``, else None."""
    parts = ref.split(":")
    if len(parts) < 3 or parts[0] != "ts":
        return None
    try:
        return parts[1], dt.date.fromisoformat(parts[2])
    except ValueError:
        return None
