"""The paper simulator: persisted bracket orders, fills and marks, and the account they add up to.

Fill model (documented in the README): an order is placed at the close of its trading day and
never fills on the bar its signal was computed from. It is a DAY limit order for the next session
only, read with the rules of ``trading_assets.execution.fills`` (the evaluation reads bars the same
way): it fills at the open when the open is already through the limit, at the limit when the
session trades *through* it (a touch does not fill), and otherwise expires. On the entry's session
only the stop can trigger; on later sessions the stop loss (on a touch, at the open when it gapped
past) and the take profit (traded through, at the open when it gapped past) work as
one-cancels-other, and a bar that reaches both exits at the stop. Every fill pays the
``CostModel``'s slippage (limit legs never past their limit, stops in full) and commission. An
order that reduces a position first cancels or shrinks the working exits of the symbol's earlier
brackets (as at IBKR), and an exit never trades more shares than are held. Times are stored as
aware UTC datetimes: the New York close of the session.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from sql.simulator import fills, marks, orders, upgrade_simulator
from trading_assets.calendar import TIMEZONE
from trading_assets.execution.costs import CostModel, FillKind
from trading_assets.execution.exits import (
    WorkingExits,
    exit_changes,
    exit_room,
    opens_position,
)
from trading_assets.execution.fills import Bar, ExitFill, entry_fill, exit_fill
from trading_assets.execution.rules import OrderIntent
from trading_assets.models import (
    Fill,
    MarketData,
    OrderSide,
    OrderTicket,
    PortfolioSnapshot,
    Position,
)

BROKER_NAME = "paper-simulator"
_NY = ZoneInfo(TIMEZONE)
_Leg = Literal["entry", "stop_loss", "take_profit"]

def _close_time(day: dt.date) -> dt.datetime:
    """The session's close, 16:00 in New York, as UTC (20:00Z in summer, 21:00Z in winter).

    UTC because SQLite keeps no zone: a New York time would be read back as if it were UTC.
    """
    return dt.datetime.combine(day, dt.time(16, 0), tzinfo=_NY).astimezone(dt.UTC)


def _utc(value: dt.datetime) -> dt.datetime:
    """A stored time as aware UTC: SQLite returns it naive (it was written as UTC)."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _bar(row: pd.Series) -> Bar:
    return Bar(float(row["open"]), float(row["high"]), float(row["low"]), float(row["close"]))


def _ticket(row: sa.Row) -> OrderTicket:
    return OrderTicket(
        order_ref=row.order_ref,
        broker=BROKER_NAME,
        symbol=row.symbol,
        side=OrderSide(row.side),
        quantity=row.quantity,
        limit_price=row.limit_price,
        stop_loss=row.stop_loss,
        take_profit=row.take_profit,
        status=row.status,
        submitted_at=_utc(row.submitted_at),
        broker_order_id=row.order_ref,
    )


def _fill(row: sa.Row) -> Fill:
    return Fill(
        order_ref=row.order_ref,
        symbol=row.symbol,
        side=OrderSide(row.side),
        quantity=row.quantity,
        price=row.price,
        filled_at=_utc(row.filled_at),
        leg=row.leg,
        commission=row.commission,
        slippage=row.slippage,
    )


@dataclass
class _Book:
    """One symbol's position, as a broker keeps it: the commission of an opening fill goes into
    the average cost, that of a closing fill comes off the realized P&L, so realized P&L is net
    of both commissions of a round trip."""

    qty: float = 0.0
    avg_cost: float = 0.0
    realized: float = 0.0

    def apply(self, side: OrderSide, quantity: float, price: float, commission: float) -> None:
        signed = quantity if side is OrderSide.BUY else -quantity
        per_share = commission / quantity if quantity else 0.0
        # What a share opened by this fill cost (a long) or brought in (a short), net.
        opening_price = price + per_share if signed > 0 else price - per_share
        if self.qty == 0 or (self.qty > 0) == (signed > 0):
            total = abs(self.qty) + abs(signed)
            self.avg_cost = (abs(self.qty) * self.avg_cost + abs(signed) * opening_price) / total
            self.qty += signed
            return
        closing = min(abs(signed), abs(self.qty))
        direction = 1 if self.qty > 0 else -1
        self.realized += closing * (price - self.avg_cost) * direction - closing * per_share
        self.qty += signed
        if abs(signed) > closing:  # flipped through zero: the rest opens at this price
            self.avg_cost = opening_price
        elif self.qty == 0:
            self.avg_cost = 0.0


class PaperBroker:
    """A simulated account persisted in a SQL database (SQLite file by default).

    ``costs``: the commission and slippage every fill pays (default ``CostModel()``).
    """

    name = BROKER_NAME

    def __init__(self, url: str, starting_cash: float, costs: CostModel | None = None) -> None:
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine = sa.create_engine(url, connect_args=_connect_args(url))
        self.starting_cash = starting_cash
        self.costs = CostModel() if costs is None else costs
        # Its own migrations (sql/simulator_migrations), like the artifacts schema.
        upgrade_simulator(url)

    # -- orders -------------------------------------------------------------------------------

    def find_order(self, ref: str) -> OrderTicket | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(orders).where(orders.c.order_ref == ref)).first()
        return _ticket(row) if row else None

    def submit(
        self, ref: str, symbol: str, day: dt.date, intent: OrderIntent, close: float
    ) -> tuple[OrderTicket, bool]:
        """Place the day's order once; returns (ticket, created). A repeat returns the original.

        The order is left working: it fills, if at all, on the next session's bar when
        ``process_bars`` reaches it, never at ``close`` (the close the signal was computed from).
        In the same transaction, the working exits of the symbol's earlier brackets are cancelled
        or shrunk so that, once this order fills, they cover no more than is left.
        """
        position = self.position(symbol, day)
        opens = opens_position(intent.side, position)
        row = {
            "order_ref": ref,
            "symbol": symbol,
            "trade_date": day,
            "side": intent.side.value,
            "quantity": float(intent.quantity),
            "limit_price": intent.limit_price,
            "stop_loss": intent.stop_loss if opens else None,
            "take_profit": intent.take_profit if opens else None,
            "bracket": opens,
            "status": "working",
            "submitted_at": _close_time(day),
            "processed_through": day,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(orders).values(**row))
                self._fit_exits(conn, symbol, exit_room(position, intent.side, intent.quantity))
        except IntegrityError:
            existing = self.find_order(ref) or self._order_on(symbol, day)
            if existing is None:
                raise
            return existing, False
        ticket = self.find_order(ref)
        assert ticket is not None
        return ticket, True

    def prepare(self, market: MarketData) -> None:
        """Mark the symbol to the partition's close and work its open orders through its bars."""
        self.record_mark(market.symbol, market.as_of, market.latest_close)
        self.process_bars(market.symbol, market.bars, market.as_of)

    def existing_order(self, symbol: str, day: dt.date) -> OrderTicket | None:
        return self._order_on(symbol, day)

    def later_day(self, symbol: str, day: dt.date) -> dt.date | None:
        """The symbol's latest day after ``day`` the account has already worked through (a mark
        or an order), or None: the account is at ``day`` or before it."""
        with self.engine.connect() as conn:
            found = [
                conn.execute(sa.select(sa.func.max(table.c[column])).where(
                    table.c.symbol == symbol, table.c[column] > day
                )).scalar()
                for table, column in ((marks, "mark_date"), (orders, "trade_date"))
            ]
        days = [d if isinstance(d, dt.date) else dt.date.fromisoformat(str(d)[:10])
                for d in found if d is not None]
        return max(days) if days else None

    def orders_placed_on(self, day: dt.date) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).select_from(orders).where(orders.c.trade_date == day)
                ).scalar_one()
            )

    def orders_between(self, start: dt.date, end: dt.date) -> list[OrderTicket]:
        """Every order of trading days [start, end], oldest first (read only)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(orders)
                .where(orders.c.trade_date >= start, orders.c.trade_date <= end)
                .order_by(orders.c.trade_date, orders.c.symbol)
            ).all()
        return [_ticket(row) for row in rows]

    def _order_on(self, symbol: str, day: dt.date) -> OrderTicket | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(orders).where(orders.c.symbol == symbol, orders.c.trade_date == day)
            ).first()
        return _ticket(row) if row else None

    def _fit_exits(self, conn: sa.Connection, symbol: str, room: dict[OrderSide, float]) -> None:
        """Cancel or shrink the symbol's working exits (oldest first) until they fit ``room``."""
        rows = conn.execute(
            sa.select(orders)
            .where(orders.c.symbol == symbol, orders.c.bracket, orders.c.status == "filled")
            .order_by(orders.c.trade_date)
        ).all()
        working = [
            WorkingExits(r.order_ref, _exit_side(r.side), _exit_quantity(r._mapping))
            for r in rows
        ]
        for change in exit_changes(working, room):
            values: dict[str, object] = {"exit_quantity": change.quantity}
            if change.cancels:
                values["status"] = "exits_cancelled"
            conn.execute(
                sa.update(orders).where(orders.c.order_ref == change.key).values(**values)
            )

    def _held(self, conn: sa.Connection, symbol: str, through: dt.date) -> float:
        """The symbol's position from the fills up to ``through``, this transaction's included."""
        signed = sa.case((fills.c.side == OrderSide.BUY.value, fills.c.quantity),
                         else_=-fills.c.quantity)
        total = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(signed), 0.0)).where(
                fills.c.symbol == symbol, fills.c.fill_date <= through
            )
        ).scalar_one()
        return float(total)

    def _record_fill(
        self, conn: sa.Connection, order: dict, leg: _Leg, raw: float, day: dt.date, *,
        kind: FillKind, limit: float | None = None, quantity: float | None = None,
    ) -> None:
        """Record one fill at ``raw`` (the bar's price) after the cost model's slippage, with its
        commission; ``limit``: the leg's limit, past which slippage never takes the price."""
        side = OrderSide(order["side"])
        if leg != "entry":
            side = _exit_side(side.value)
        shares = float(order["quantity"] if quantity is None else quantity)
        price = round(self.costs.fill_price(side, raw, kind, limit), 4)
        conn.execute(
            sa.insert(fills).values(
                order_ref=order["order_ref"],
                leg=leg,
                symbol=order["symbol"],
                side=side.value,
                quantity=shares,
                price=price,
                fill_date=day,
                filled_at=_close_time(day),
                commission=round(self.costs.commission(shares), 4),
                slippage=round(abs(price - raw) * shares, 4),
            )
        )
        self._set_status(conn, order, "closed" if leg != "entry" or not order["bracket"]
                         else "filled")

    def process_bars(self, symbol: str, bars: pd.DataFrame, through: dt.date) -> int:
        """Work the symbol's open orders against bars after their last processed day.

        Day by day, all orders on each bar (oldest order first), so every fill sees the position
        the earlier days' fills left. An order's own day is never worked: the first bar it sees
        is the next session's.
        """
        touched = 0
        with self.engine.begin() as conn:
            open_orders = [
                dict(row._mapping)
                for row in conn.execute(
                    sa.select(orders)
                    .where(
                        orders.c.symbol == symbol,
                        orders.c.status.in_(("working", "filled")),
                        orders.c.processed_through < through,
                    )
                    .order_by(orders.c.trade_date)
                ).all()
            ]
            if not open_orders:
                return 0
            start = min(o["processed_through"] for o in open_orders)
            window = bars[(bars.index.date > start) & (bars.index.date <= through)]
            for ts, bar in window.iterrows():
                day = ts.date()
                for order in open_orders:
                    if order["status"] in ("working", "filled") and day > order[
                        "processed_through"
                    ]:
                        touched += self._work_bar(conn, order, day, _bar(bar))
            conn.execute(
                sa.update(orders)
                .where(orders.c.order_ref.in_([o["order_ref"] for o in open_orders]))
                .values(processed_through=through)
            )
        return touched

    def _work_bar(self, conn: sa.Connection, order: dict, day: dt.date, bar: Bar) -> int:
        """Fills recorded for ``order`` on ``bar`` (0, 1, or 2: an entry stopped out at once)."""
        side = OrderSide(order["side"])
        if order["status"] == "working":
            limit = order["limit_price"]
            entry = entry_fill(side, limit, bar)
            if entry is None:
                # A DAY order, as at IBKR: it works through the next session only. Left working,
                # old entries would fill later on top of newer ones, past the position limits.
                self._set_status(conn, order, "expired")
                return 0
            self._record_fill(conn, order, "entry", entry.raw_price, day, kind="limit",
                              limit=limit)
            if not order["bracket"]:
                return 1
            stopped = exit_fill(side, order["stop_loss"], order["take_profit"], bar,
                                entry_price=entry.raw_price)
            return 1 + (self._exit(conn, order, day, stopped) if stopped else 0)
        hit = exit_fill(side, order["stop_loss"], order["take_profit"], bar)
        return self._exit(conn, order, day, hit) if hit else 0

    def _exit(self, conn: sa.Connection, order: dict, day: dt.date, hit: ExitFill) -> int:
        # An exit closes what the bracket opened and never more: it cannot take the position
        # through zero, whatever else traded the symbol since.
        held = self._held(conn, order["symbol"], day)
        held_by_side = max(held, 0.0) if order["side"] == OrderSide.BUY.value else max(-held, 0.0)
        quantity = min(_exit_quantity(order), held_by_side)
        if quantity <= 0:
            conn.execute(
                sa.update(orders)
                .where(orders.c.order_ref == order["order_ref"])
                .values(status="exits_cancelled", exit_quantity=0.0)
            )
            order["status"] = "exits_cancelled"
            return 0
        target = order["take_profit"] if hit.leg == "take_profit" else None
        self._record_fill(conn, order, hit.leg, hit.raw_price, day, kind=hit.kind, limit=target,
                          quantity=quantity)
        return 1

    def _set_status(self, conn: sa.Connection, order: dict, status: str) -> None:
        conn.execute(
            sa.update(orders).where(orders.c.order_ref == order["order_ref"]).values(status=status)
        )
        order["status"] = status

    def fills_for(self, ref: str) -> list[Fill]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(fills).where(fills.c.order_ref == ref).order_by(fills.c.id)
            ).all()
        return [_fill(r) for r in rows]

    # -- account ------------------------------------------------------------------------------

    def record_mark(self, symbol: str, day: dt.date, close: float) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.delete(marks).where(marks.c.symbol == symbol, marks.c.mark_date == day)
            )
            conn.execute(sa.insert(marks).values(symbol=symbol, mark_date=day, close=close))

    def _books(self, as_of: dt.date) -> tuple[dict[str, _Book], list[Fill], float]:
        """Each symbol's book, the fills of ``as_of`` and the cash: fills and commissions paid."""
        books: dict[str, _Book] = {}
        cash = self.starting_cash
        today: list[Fill] = []
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(fills).where(fills.c.fill_date <= as_of).order_by(
                    fills.c.fill_date, fills.c.id
                )
            ).all()
        for r in rows:
            side = OrderSide(r.side)
            books.setdefault(r.symbol, _Book()).apply(side, r.quantity, r.price, r.commission)
            cash += (-1 if side is OrderSide.BUY else 1) * r.quantity * r.price - r.commission
            if r.fill_date == as_of:
                today.append(_fill(r))
        return books, today, cash

    def position(self, symbol: str, as_of: dt.date) -> float:
        books, _, _ = self._books(as_of)
        return books[symbol].qty if symbol in books else 0.0

    def _latest_marks(self, symbols: Iterable[str], as_of: dt.date) -> dict[str, float]:
        found: dict[str, float] = {}
        with self.engine.connect() as conn:
            for symbol in symbols:
                close = conn.execute(
                    sa.select(marks.c.close)
                    .where(marks.c.symbol == symbol, marks.c.mark_date <= as_of)
                    .order_by(marks.c.mark_date.desc())
                    .limit(1)
                ).scalar()
                if close is not None:
                    found[symbol] = close
        return found

    def snapshot(self, as_of: dt.date, symbol: str) -> PortfolioSnapshot:
        """The account after ``as_of``'s fills. Cash has paid every commission; realized P&L is
        net of commission (see ``_Book``), and a position's average cost includes its entry's."""
        books, today, cash = self._books(as_of)
        marks_now = self._latest_marks(books, as_of)
        positions = []
        for sym, book in books.items():
            if book.qty == 0:
                continue
            price = marks_now.get(sym, book.avg_cost)
            positions.append(
                Position(
                    symbol=sym,
                    quantity=book.qty,
                    average_cost=round(book.avg_cost, 4),
                    market_price=price,
                    market_value=round(book.qty * price, 2),
                    unrealized_pnl=round(book.qty * (price - book.avg_cost), 2),
                )
            )
        return PortfolioSnapshot(
            as_of=as_of,
            symbol=symbol,
            source=BROKER_NAME,
            cash=round(cash, 2),
            positions=positions,
            total_value=round(cash + sum(p.market_value for p in positions), 2),
            unrealized_pnl=round(sum(p.unrealized_pnl for p in positions), 2),
            realized_pnl=round(sum(b.realized for b in books.values()), 2),
            fills_today=today,
        )

    def equity(self, as_of: dt.date) -> float:
        return self.snapshot(as_of, symbol="*").total_value


def _exit_side(entry_side: str) -> OrderSide:
    return OrderSide.SELL if entry_side == OrderSide.BUY.value else OrderSide.BUY


def _exit_quantity(order: Mapping[str, object]) -> float:
    exit_quantity = order.get("exit_quantity")
    return float(order["quantity"] if exit_quantity is None else exit_quantity)  # type: ignore[arg-type]


def _connect_args(url: str) -> dict:
    return {"timeout": 30} if url.startswith("sqlite") else {"connect_timeout": 10}
