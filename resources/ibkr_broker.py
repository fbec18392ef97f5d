"""Orders, fills and the account at Interactive Brokers, as the project's typed values.

Orders are found by their orderRef prefix (the partition's reference) among open orders,
completed orders and executions, so a retry after a crash finds what was already sent. Before an
order that reduces a position is sent, the working exits of earlier brackets for the symbol
(found by the prefix ``ts:<SYMBOL>``) are cancelled or shrunk, so an exit can never sell shares
that are gone.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from resources.ibkr import (
    IbkrError,
    IbkrPositionChangedError,
    IbkrSession,
    IbkrUnreachableError,
    mask_account,
    ref_matches,
)
from trading_assets.calendar import latest_completed_session
from trading_assets.execution.exits import (
    OCA_CANCEL_WITH_BLOCK,
    ExitChange,
    WorkingExits,
    exit_changes,
    exit_room,
    oca_group,
    opens_position,
)
from trading_assets.execution.rules import OrderIntent, order_ref
from trading_assets.execution.venue import partition_of_ref
from trading_assets.models import (
    Fill,
    OrderSide,
    OrderTicket,
    PortfolioSnapshot,
    Position,
)

REF_PREFIX = "ts:"


def _partition_prefix(symbol: str, day: dt.date) -> str:
    return order_ref(symbol, day)


def _day_of_ref(ref: str) -> str | None:
    parts = ref.split(":")
    return parts[2] if len(parts) >= 3 and ref.startswith(REF_PREFIX) else None


class IbkrBroker:
    """A Venue over one IBKR session, in mode ``ibkr-paper`` or ``ibkr-live``."""

    def __init__(self, session: IbkrSession, mode: str) -> None:
        self.session = session
        self.name = mode
        self.account = session.account_id()
        paper_account = self.account.startswith("D")  # IBKR paper accounts are DU.../DF...
        if mode == "ibkr-paper" and not paper_account:
            raise IbkrError(
                f"TRADING_MODE=ibkr-paper, but the session at {session.settings.address} is "
                f"logged in to {mask_account(self.account)}, a live account: log the gateway in "
                "to the paper account (or see the README for live trading)"
            )
        if mode == "ibkr-live" and paper_account:
            raise IbkrError(
                f"TRADING_MODE=ibkr-live, but {session.settings.address} is logged in to the "
                f"paper account {mask_account(self.account)}: use TRADING_MODE=ibkr-paper"
            )

    # -- orders ----------------------------------------------------------------------------------

    def existing_order(self, symbol: str, day: dt.date) -> OrderTicket | None:
        prefix = _partition_prefix(symbol, day)
        trades = self.session.trades_with_ref(prefix)
        if trades:
            return self._ticket(symbol, trades)
        fills = [f for f in self.session.executions() if ref_matches(f.execution.orderRef, prefix)]
        if fills:  # the order is gone from the order lists, its executions are not
            first = min(fills, key=lambda f: f.time)
            ex = first.execution
            return OrderTicket(
                order_ref=ex.orderRef,
                broker=self.name,
                symbol=symbol,
                side=OrderSide.BUY if ex.side.upper().startswith("B") else OrderSide.SELL,
                quantity=sum(f.execution.shares for f in fills if f.execution.side == ex.side),
                limit_price=ex.price,
                status="Filled",
                submitted_at=_aware(first.time),
                broker_order_id=str(ex.permId or ex.orderId),
            )
        return None

    def orders_between(self, start: dt.date, end: dt.date) -> list[OrderTicket]:
        """The orders (open, completed, or only their executions) whose reference names a day in
        [start, end], one per symbol and day. Read only: nothing is sent or changed."""
        partitions = set()
        for ref in self.session.all_order_refs():
            found = partition_of_ref(ref)
            if found is not None and start <= found[1] <= end:
                partitions.add(found)
        tickets = [self.existing_order(symbol, day) for symbol, day in sorted(partitions)]
        return [t for t in tickets if t is not None]

    def _ticket(self, symbol: str, trades: list[Any]) -> OrderTicket:
        parents = [t for t in trades if not t.order.parentId] or trades
        parent = min(parents, key=lambda t: t.order.orderId or t.order.permId)
        children = [t for t in trades if t.order.parentId == parent.order.orderId != 0]
        stop = next((t.order.auxPrice for t in children if t.order.orderType == "STP"), None)
        target = next((t.order.lmtPrice for t in children if t.order.orderType == "LMT"), None)
        o = parent.order
        submitted = parent.log[0].time if parent.log else dt.datetime.now(dt.UTC)
        return OrderTicket(
            order_ref=o.orderRef,
            broker=self.name,
            symbol=symbol,
            side=OrderSide(o.action),
            quantity=o.totalQuantity,
            limit_price=o.lmtPrice,
            stop_loss=stop or None,
            take_profit=target or None,
            status=parent.orderStatus.status or "Submitted",
            submitted_at=_aware(submitted),
            broker_order_id=str(o.permId or o.orderId),
        )

    def fills_for(self, ref: str) -> list[Fill]:
        prefix = ":".join(ref.split(":")[:3])
        legs = {}
        for t in self.session.trades_with_ref(prefix):
            o = t.order
            exit_leg = "stop_loss" if o.orderType == "STP" else "take_profit"
            legs[o.orderId] = exit_leg if o.parentId else "entry"
        return [
            _fill(f, legs.get(f.execution.orderId, "entry"))
            for f in self.session.executions()
            if ref_matches(f.execution.orderRef, prefix)
        ]

    def orders_placed_on(self, day: dt.date) -> int:
        partitions = {
            ":".join(ref.split(":")[:3])
            for ref in self.session.all_order_refs()
            if _day_of_ref(ref) == day.isoformat()
        }
        return len(partitions)

    def submit(
        self, ref: str, symbol: str, day: dt.date, intent: OrderIntent, close: float
    ) -> tuple[OrderTicket, bool]:
        latest = latest_completed_session(dt.datetime.now(dt.UTC))
        if day != latest:  # the order asset checks this first; a venue never trusts a caller
            raise IbkrError(f"refusing to send {ref} to IBKR: {day} is not the latest completed "
                            f"session {latest}")
        existing = self.existing_order(symbol, day)
        if existing is not None:
            return existing, False
        contract = self.session.stock(symbol)
        side = intent.side.value
        position = self.position(symbol, day)
        # Earlier brackets' exits first: once this order fills they may not trade more than is
        # left, or a later stop/target fill would take the account short.
        if self._fit_exits(symbol, exit_room(position, intent.side, intent.quantity), ref):
            now = self.position(symbol, day)
            if now != position:
                raise IbkrPositionChangedError(
                    f"the {symbol} position moved from {position:g} to {now:g} while earlier "
                    f"exits were being adjusted; {ref} was not sent, and the retry sizes it again"
                )
        if opens_position(intent.side, position):
            orders = self.session.bracket(
                side, intent.quantity, intent.limit_price, intent.take_profit, intent.stop_loss,
                oca_group=oca_group(ref), oca_type=OCA_CANCEL_WITH_BLOCK,
            )
        else:
            orders = [self.session.limit(side, intent.quantity, intent.limit_price)]
        for i, order in enumerate(orders):
            order.orderRef = ref
            order.account = self.account
            # The entry works for the session; the bracket's exits stay until one fills.
            order.tif = "DAY" if i == 0 else "GTC"
        try:
            self.session.place(contract, orders)
        except ConnectionError as exc:
            # Sent or not? The gateway knows: look the reference up on the new connection.
            found = self.existing_order(symbol, day)
            if found is not None:
                return found, True
            raise IbkrUnreachableError(
                f"the connection dropped while sending {ref} and the gateway does not show it; "
                "the step will be retried (and will look the reference up again first)"
            ) from exc
        placed = self.existing_order(symbol, day)
        if placed is None:
            raise IbkrUnreachableError(
                f"{ref} was sent but the gateway does not list it yet; the retry looks it up again"
            )
        return placed, True

    def _fit_exits(self, symbol: str, room: dict[OrderSide, float], ref: str) -> bool:
        """Cancel or shrink the working exits of earlier brackets for ``symbol`` (oldest first)
        until they fit ``room``, and wait for the gateway to confirm. True if anything changed.

        Raises IbkrPositionChangedError when an exit filled instead of being cancelled.
        """
        prefix = f"{REF_PREFIX}{symbol}"
        legs: dict[str, list[Any]] = defaultdict(list)
        for trade in self.session.trades_with_ref(prefix):
            o = trade.order
            if o.parentId and not trade.isDone():
                legs[f"{o.orderRef}#{o.parentId}"].append(trade)
        working = [
            WorkingExits(key, OrderSide(trades[0].order.action),
                         max(t.order.totalQuantity - _filled(t) for t in trades))
            for key, trades in sorted(legs.items(), key=lambda kv: _bracket_age(kv[0]))
        ]
        changes = exit_changes(working, room)
        if not changes:
            return False
        own_id = self.session.settings.client_id
        foreign = [t for c in changes for t in legs[c.key] if t.order.clientId != own_id]
        if foreign:
            o = foreign[0].order
            raise IbkrError(
                f"{ref} would reduce the {symbol} position, but the exit order {o.orderRef} "
                f"#{o.orderId} was placed by API client id {o.clientId} and only that client can "
                f"cancel or resize it (this is IBKR_CLIENT_ID={own_id}); nothing was sent. "
                f"Cancel the exits of {o.orderRef} in TWS, or set IBKR_CLIENT_ID={o.clientId}, "
                "then re-materialize order"
            )
        targets: dict[object, tuple[float | None, float]] = {}  # order -> (new size, filled)
        for change in changes:
            for t in legs[change.key]:
                filled = _filled(t)
                key = _order_key(t.order)
                if change.cancels:
                    targets[key] = (None, filled)
                    self.session.cancel(t.order)
                else:
                    targets[key] = (filled + change.quantity, filled)
                    self.session.resize(t.contract, t.order, filled + change.quantity)
        self.session.log.warning(f"{symbol}: before sending {ref}: {_describe(changes)}")
        self.session.wait_until(
            f"adjusting the exits of earlier {symbol} brackets ({_describe(changes)})",
            lambda: self._exits_settled(prefix, targets, ref),
        )
        return True

    def _exits_settled(
        self, prefix: str, targets: dict[object, tuple[float | None, float]], ref: str
    ) -> bool:
        from ib_async import OrderStatus  # with the session: not when the code location loads

        found = {_order_key(t.order): t for t in self.session.trades_with_ref(prefix)}
        settled = True
        for key, (total, filled_before) in targets.items():
            t = found.get(key)
            if t is None:
                continue
            if t.orderStatus.status == OrderStatus.Filled or _filled(t) > filled_before:
                raise IbkrPositionChangedError(
                    f"the exit {t.order.orderRef} #{t.order.orderId} filled while it was being "
                    f"adjusted; {ref} was not sent, and the retry sizes it again"
                )
            if t.isDone():
                continue
            if total is None or t.order.totalQuantity != total:
                settled = False
        return settled

    # -- account ---------------------------------------------------------------------------------

    def equity(self, day: dt.date) -> float:
        return self.session.account_values(self.account)["NetLiquidation"]

    def position(self, symbol: str, day: dt.date) -> float:
        contract = self.session.stock(symbol)
        return sum(
            p.position
            for p in self.session.positions(self.account)
            if p.contract.conId == contract.conId
        )

    def snapshot(self, day: dt.date, symbol: str) -> PortfolioSnapshot:
        values = self.session.account_values(self.account)
        positions = [
            Position(
                symbol=item.contract.symbol.replace(" ", "."),
                quantity=item.position,
                average_cost=round(item.averageCost, 4),
                market_price=item.marketPrice,
                market_value=round(item.marketValue, 2),
                unrealized_pnl=round(item.unrealizedPNL, 2),
            )
            for item in self.session.portfolio(self.account)
            if item.position
        ]
        fills = [_fill(f, "entry") for f in self.session.executions(since=day)]
        return PortfolioSnapshot(
            as_of=day,
            symbol=symbol,
            source=f"{self.name} {mask_account(self.account)}",
            cash=round(values.get("TotalCashValue", 0.0), 2),
            positions=positions,
            total_value=round(values["NetLiquidation"], 2),
            unrealized_pnl=round(values.get("UnrealizedPnL", 0.0), 2),
            realized_pnl=round(values.get("RealizedPnL", 0.0), 2),
            fills_today=fills,
        )


def _order_key(order: Any) -> object:
    """The permanent id (the same in open and completed orders), else client and order id."""
    return order.permId or (order.clientId, order.orderId)


def _filled(trade: Any) -> float:
    return float(trade.orderStatus.filled or 0.0)


def _bracket_age(key: str) -> tuple[str, int]:
    """Sort key of a bracket 'ts:SYM:date:SIDE#parentId': by trading day, then order id."""
    ref, _, parent = key.rpartition("#")
    day = _day_of_ref(ref) or ""
    return day, int(parent) if parent.isdigit() else 0


def _describe(changes: list[ExitChange]) -> str:
    return "; ".join(
        f"cancelled the exits of {c.key.partition('#')[0]}" if c.cancels
        else f"resized the exits of {c.key.partition('#')[0]} to {c.quantity:g} shares"
        for c in changes
    )


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _fill(fill: Any, leg: str) -> Fill:
    ex = fill.execution
    return Fill(
        order_ref=ex.orderRef or "",
        symbol=fill.contract.symbol.replace(" ", "."),
        side=OrderSide.BUY if ex.side.upper().startswith("B") else OrderSide.SELL,
        quantity=ex.shares,
        price=ex.price,
        filled_at=_aware(fill.time),
        leg=leg,  # type: ignore[arg-type]
    )
