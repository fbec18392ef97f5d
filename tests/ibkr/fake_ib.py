"""A faithful stand-in for ib_async's ``IB`` client and the gateway behind it.

``FakeGateway`` is TWS / IB Gateway: it keeps orders (with their orderRef), executions, positions
and account values across connections. ``FakeIB`` is one client connection with the slice of the
``IB`` API the project uses, returning ib_async's own types. Faults are injected per method:
``gateway.fail("reqHistoricalData", pacing_error())`` or ``gateway.fail("placeOrder", DROP)``.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from ib_async import (
    AccountValue,
    BarData,
    CommissionReport,
    Contract,
    Execution,
    ExecutionFilter,
    Fill,
    LimitOrder,
    Order,
    OrderStatus,
    PortfolioItem,
    Position,
    StopOrder,
    Trade,
)
from ib_async.objects import TradeLogEntry
from ib_async.order import BracketOrder
from ib_async.wrapper import RequestError

from resources.ibkr import IbkrResource
from trading_assets.market_data.synthetic import synthetic_bars

PASS = "pass"  # this call goes through (to fault a later call: fail(m, PASS), fail(m, DROP))
FILLS_FIRST = "fills-first"  # cancelOrder: the market reaches the order before the cancel does
DROP = "drop"  # the socket closes during the call
DROP_AFTER = "drop-after"  # the gateway handles the call, then the socket closes
CRASH_AFTER = "crash-after"  # the gateway handles the call, then the client process dies


class ProcessCrash(BaseException):
    """The client process died (not an Exception: nothing in the code under test catches it)."""


def pacing_error(req_id: int = 0) -> RequestError:
    return RequestError(
        req_id, 162,
        "Historical Market Data Service error message:API historical data query cancelled: "
        "pacing violation",
    )


@dataclass
class _Order:
    contract: Contract
    order: Order
    status: str = "Submitted"
    submitted: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


def market_bars(symbol: str, end: dt.date, sessions: int, close: float | None) -> pd.DataFrame:
    """Synthetic daily bars for ``symbol``, scaled so that the last close is ``close``."""
    frame = synthetic_bars(symbol, end, sessions).bars
    if close is None:
        return frame
    factor = close / float(frame["close"].iloc[-1])
    prices = ["open", "high", "low", "close"]
    return frame.assign(**{c: (frame[c] * factor).round(2) for c in prices})


class FakeGateway:
    """The server side: survives client reconnects; one per test."""

    def __init__(self, account: str = "DU1234567", cash: float = 100_000.0) -> None:
        self.up = True
        self.account = account
        self.accounts = [account]
        self.symbols = {"TSLA": 76792991, "NVDA": 4815747, "AAPL": 265598}
        # Where each symbol last closed: the tests' signals enter at 100, within the sanity rule.
        self.closes: dict[str, float] = {"TSLA": 100.0, "NVDA": 100.0}
        self.errors: list[str] = []  # error messages the gateway sent for refused requests
        self.cash = cash
        self.realized = 0.0
        self.positions: dict[str, tuple[float, float]] = {}  # symbol -> (qty, avg cost)
        self.marks: dict[str, float] = {}
        self.orders: list[_Order] = []
        self.fills: list[Fill] = []
        self.faults: dict[str, deque[Any]] = defaultdict(deque)
        self.calls: dict[str, int] = defaultdict(int)
        self.connections = 0
        self.history_sessions: int | None = None
        self._ids = itertools.count(1)
        self._perm = itertools.count(9_000_001)

    def fail(self, method: str, fault: Any, times: int = 1) -> None:
        self.faults[method].extend([fault] * times)

    def next_id(self) -> int:
        return next(self._ids)

    # -- what the tests look at --------------------------------------------------------------

    def placed(self) -> list[_Order]:
        return list(self.orders)

    def parents(self) -> list[_Order]:
        return [o for o in self.orders if not o.order.parentId]

    def contract(self, symbol: str) -> Contract:
        return Contract(secType="STK", symbol=symbol, exchange="SMART", currency="USD",
                        primaryExchange="NASDAQ", conId=self.symbols[symbol])

    # -- what the market does ----------------------------------------------------------------

    def fill(self, parent: _Order, price: float, when: dt.datetime | None = None) -> Fill:
        """The order ``parent`` (an entry or an exit) executes at ``price``: an execution, a
        position, cash. Its one-cancels-other group and attached siblings are cancelled."""
        o = parent.order
        assert parent.status not in OrderStatus.DoneStates, f"{o.orderRef} is {parent.status}"
        when = when or dt.datetime.now(dt.UTC)
        symbol = parent.contract.symbol
        signed = o.totalQuantity if o.action == "BUY" else -o.totalQuantity
        qty, avg = self.positions.get(symbol, (0.0, 0.0))
        new_qty = qty + signed
        avg = (qty * avg + signed * price) / new_qty if new_qty and (qty * signed >= 0) else avg
        if qty and qty * signed < 0:
            self.realized += min(abs(qty), abs(signed)) * (price - avg) * (1 if qty > 0 else -1)
        self.positions[symbol] = (new_qty, avg if new_qty else 0.0)
        self.cash -= signed * price
        self.marks[symbol] = price
        parent.status = "Filled"
        execution = Execution(
            execId=f"0001.{len(self.fills) + 1}", time=when, acctNumber=self.account,
            exchange="NASDAQ", side="BOT" if o.action == "BUY" else "SLD",
            shares=o.totalQuantity, price=price, permId=o.permId, clientId=o.clientId,
            orderId=o.orderId, cumQty=o.totalQuantity, avgPrice=price, orderRef=o.orderRef,
        )
        fill = Fill(parent.contract, execution, CommissionReport(execId=execution.execId,
                    commission=1.0, currency="USD"), when)
        self.fills.append(fill)
        for other in self.orders:
            linked = (o.ocaGroup and other.order.ocaGroup == o.ocaGroup) or (
                o.parentId and other.order.parentId == o.parentId
                and other.order.clientId == o.clientId
            )
            if other is not parent and linked and other.status not in OrderStatus.DoneStates:
                other.status = "Cancelled"
        return fill

    def bar(self, symbol: str, low: float, high: float) -> list[Fill]:
        """A later bar from ``low`` to ``high``: working exits (of filled entries) that it
        reaches execute, the stop first (a bar that touches both exits at the stop)."""
        filled_ids = {(o.order.clientId, o.order.orderId) for o in self.orders
                      if o.status == "Filled"}
        exits = [o for o in self.orders if o.contract.symbol == symbol and o.order.parentId
                 and (o.order.clientId, o.order.parentId) in filled_ids]
        exits.sort(key=lambda o: o.order.orderType != "STP")
        done = []
        for leg in exits:
            if leg.status in OrderStatus.DoneStates:
                continue
            o = leg.order
            sell = o.action == "SELL"
            if o.orderType == "STP" and ((sell and low <= o.auxPrice) or
                                         (not sell and high >= o.auxPrice)):
                done.append(self.fill(leg, o.auxPrice))
            elif o.orderType == "LMT" and ((sell and high >= o.lmtPrice) or
                                           (not sell and low <= o.lmtPrice)):
                done.append(self.fill(leg, o.lmtPrice))
        return done

    def position(self, symbol: str) -> float:
        return self.positions.get(symbol, (0.0, 0.0))[0]

    def working_exits(self, symbol: str) -> list[_Order]:
        return [o for o in self.orders if o.contract.symbol == symbol and o.order.parentId
                and o.status not in OrderStatus.DoneStates]

    def account_values(self) -> list[AccountValue]:
        unrealized = sum(q * (self.marks.get(s, a) - a) for s, (q, a) in self.positions.items())
        value = sum(q * self.marks.get(s, a) for s, (q, a) in self.positions.items())
        tags = {
            "NetLiquidation": self.cash + value,
            "TotalCashValue": self.cash,
            "UnrealizedPnL": unrealized,
            "RealizedPnL": self.realized,
        }
        return [
            AccountValue(self.account, tag, f"{v:.2f}", cur, "")
            for tag, v in tags.items()
            for cur in ("USD", "BASE")
        ]


class FakeIB:
    """One client connection, with ib_async's method names, arguments and return types."""

    RequestTimeout: float = 0
    RaiseRequestErrors: bool = False

    def __init__(self, gateway: FakeGateway) -> None:
        self.gateway = gateway
        self._after: str | None = None
        self.connected = False
        self.client_id: int | None = None

    # -- connection ----------------------------------------------------------------------------

    def _enter(self, method: str) -> None:
        g = self.gateway
        g.calls[method] += 1
        self._after = None
        if method != "connect" and not self.connected:
            raise ConnectionError("Not connected")
        fault = g.faults[method].popleft() if g.faults[method] else PASS
        if fault in (DROP_AFTER, CRASH_AFTER):
            self._after = fault
        elif fault == DROP:
            self.connected = False
            raise ConnectionError("Socket disconnect")
        elif fault != PASS:
            raise fault

    def _leave(self, method: str) -> None:
        fault, self._after = self._after, None
        if fault is not None:
            self.connected = False
            if fault == CRASH_AFTER:
                raise ProcessCrash(f"the process died right after {method}")
            raise ConnectionError("Socket disconnect")

    def connect(self, host: str = "127.0.0.1", port: int = 7497, clientId: int = 1,
                timeout: float = 4, readonly: bool = False, account: str = "", **_: Any) -> FakeIB:
        self._enter("connect")
        if not self.gateway.up:
            raise ConnectionRefusedError(111, f"Connect call failed ('{host}', {port})")
        self.connected = True
        self.client_id = clientId
        self.gateway.connections += 1
        return self

    def disconnect(self) -> str | None:
        self.connected = False
        return None

    def isConnected(self) -> bool:
        return self.connected

    # -- contracts and bars ------------------------------------------------------------------

    def qualifyContracts(self, *contracts: Contract) -> list[Contract | None]:
        self._enter("qualifyContracts")
        out: list[Contract | None] = []
        for c in contracts:
            if c.symbol not in self.gateway.symbols:
                if self.RaiseRequestErrors:
                    raise RequestError(self.gateway.next_id(), 200,
                                       "No security definition has been found for the request")
                out.append(None)
                continue
            known = self.gateway.contract(c.symbol)
            c.conId, c.primaryExchange = known.conId, known.primaryExchange
            out.append(c)
        return out

    def reqHistoricalData(self, contract: Contract, endDateTime: Any, durationStr: str,
                          barSizeSetting: str, whatToShow: str, useRTH: bool,
                          formatDate: int = 1, keepUpToDate: bool = False,
                          chartOptions: list[Any] | None = None, timeout: float = 60) -> list[Any]:
        self._enter("reqHistoricalData")
        assert barSizeSetting == "1 day" and whatToShow == "TRADES" and useRTH
        assert contract.conId, "historical data needs a qualified contract"
        end = dt.datetime.strptime(str(endDateTime)[:8], "%Y%m%d").date()
        amount, unit = durationStr.split()
        days = int(amount) * (365 if unit == "Y" else 1)
        sessions = self.gateway.history_sessions or max(30, days * 5 // 7)
        close = self.gateway.closes.get(contract.symbol)
        frame = market_bars(contract.symbol, end, sessions, close)
        start = pd.Timestamp(end - dt.timedelta(days=days))
        frame = frame[frame.index >= start]
        bars = [
            BarData(date=ts.date(), open=r.open, high=r.high, low=r.low, close=r.close,
                    volume=float(r.volume), average=r.close, barCount=100)
            for ts, r in frame.iterrows()
        ]
        self._leave("reqHistoricalData")
        return bars

    # -- orders --------------------------------------------------------------------------------

    def bracketOrder(self, action: str, quantity: float, limitPrice: float,
                     takeProfitPrice: float, stopLossPrice: float, **kwargs: Any) -> BracketOrder:
        reverse = "BUY" if action == "SELL" else "SELL"
        g = self.gateway
        parent = LimitOrder(action, quantity, limitPrice, orderId=g.next_id(), transmit=False,
                            **kwargs)
        take = LimitOrder(reverse, quantity, takeProfitPrice, orderId=g.next_id(),
                          transmit=False, parentId=parent.orderId, **kwargs)
        stop = StopOrder(reverse, quantity, stopLossPrice, orderId=g.next_id(), transmit=True,
                         parentId=parent.orderId, **kwargs)
        return BracketOrder(parent, take, stop)

    def placeOrder(self, contract: Contract, order: Order) -> Trade:
        """A new order, or (same client, same orderId as a working order) a modification."""
        self._enter("placeOrder")
        g = self.gateway
        existing = self._own(order.orderId) if order.orderId else None
        if existing is not None:
            assert existing.status not in OrderStatus.DoneStates, "modifying a finished order"
            existing.order.totalQuantity = order.totalQuantity
            existing.order.lmtPrice, existing.order.auxPrice = order.lmtPrice, order.auxPrice
            trade = _trade(existing)
            self._leave("placeOrder")
            return trade
        order.orderId = order.orderId or g.next_id()
        order.clientId = self.client_id or 0
        order.permId = next(g._perm)
        placed = _Order(contract, order)
        g.orders.append(placed)
        trade = _trade(placed)
        self._leave("placeOrder")
        return trade

    def cancelOrder(self, order: Order, manualCancelOrderTime: str = "") -> Trade | None:
        """Like IBKR: only the client that placed an order can cancel it; the answer comes back
        as a status (or an error message), never as an exception."""
        g = self.gateway
        fills_first = bool(g.faults["cancelOrder"]) and g.faults["cancelOrder"][0] == FILLS_FIRST
        if fills_first:
            g.faults["cancelOrder"].popleft()
        self._enter("cancelOrder")
        placed = self._own(order.orderId)
        if placed is None or placed.status in OrderStatus.DoneStates:
            g.errors.append(f"10147: OrderId {order.orderId} that needs to be cancelled is not "
                            "found")
            self._leave("cancelOrder")
            return None
        if fills_first:
            price = order.auxPrice if order.orderType == "STP" else order.lmtPrice
            g.fill(placed, price)
        else:
            placed.status = "Cancelled"
        trade = _trade(placed)
        self._leave("cancelOrder")
        return trade

    def _own(self, order_id: int) -> _Order | None:
        return next((o for o in self.gateway.orders if o.order.orderId == order_id
                     and o.order.clientId == (self.client_id or 0)), None)

    def reqAllOpenOrders(self) -> list[Trade]:
        self._enter("reqAllOpenOrders")
        return [_trade(o) for o in self.gateway.orders if o.status not in OrderStatus.DoneStates]

    def reqCompletedOrders(self, apiOnly: bool) -> list[Trade]:
        self._enter("reqCompletedOrders")
        return [_trade(o) for o in self.gateway.orders if o.status in OrderStatus.DoneStates]

    def reqExecutions(self, execFilter: ExecutionFilter | None = None) -> list[Fill]:
        self._enter("reqExecutions")
        fills = list(self.gateway.fills)
        if execFilter and execFilter.time:
            since = dt.datetime.strptime(execFilter.time[:8], "%Y%m%d").date()
            fills = [f for f in fills if f.time.date() >= since]
        return fills

    # -- account -------------------------------------------------------------------------------

    def managedAccounts(self) -> list[str]:
        self._enter("managedAccounts")
        return list(self.gateway.accounts)

    def accountValues(self, account: str = "") -> list[AccountValue]:
        self._enter("accountValues")
        return [v for v in self.gateway.account_values() if not account or v.account == account]

    def positions(self, account: str = "") -> list[Position]:
        self._enter("positions")
        g = self.gateway
        return [Position(g.account, g.contract(s), q, a) for s, (q, a) in g.positions.items() if q]

    def portfolio(self, account: str = "") -> list[PortfolioItem]:
        self._enter("portfolio")
        g = self.gateway
        items = []
        for s, (q, a) in g.positions.items():
            if not q:
                continue
            mark = g.marks.get(s, a)
            items.append(PortfolioItem(g.contract(s), q, mark, q * mark, a, q * (mark - a), 0.0,
                                       g.account))
        return items


def _trade(placed: _Order) -> Trade:
    filled = placed.order.totalQuantity if placed.status == "Filled" else 0.0
    status = OrderStatus(orderId=placed.order.orderId, status=placed.status,
                         filled=filled, remaining=placed.order.totalQuantity - filled,
                         permId=placed.order.permId, parentId=placed.order.parentId)
    log = [TradeLogEntry(placed.submitted, placed.status, "")]
    # A copy, as decoded from the wire: changing it changes nothing until it is sent back.
    return Trade(contract=placed.contract, order=copy.copy(placed.order), orderStatus=status,
                 log=log)


_GATEWAYS: dict[str, FakeGateway] = {}


class FakeIbkrResource(IbkrResource):
    """The real resource, handing out FakeIB clients of one registered gateway."""

    gateway_id: str

    def new_ib(self) -> Any:
        return FakeIB(_GATEWAYS[self.gateway_id])

    def sleep(self, seconds: float) -> None:
        _GATEWAYS[self.gateway_id].calls["sleep"] += 1


def fake_ibkr(gateway: FakeGateway, **settings: Any) -> FakeIbkrResource:
    key = f"gw-{id(gateway)}"
    _GATEWAYS[key] = gateway
    return FakeIbkrResource(gateway_id=key, **settings)
