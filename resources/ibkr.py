"""Interactive Brokers (TWS or IB Gateway) over ib_async: one connection per use, with timeouts.

Every request has a timeout; a dropped connection is reconnected once per session; an unreachable
gateway fails naming host:port. Errors a retry can fix subclass ``ConnectionError`` (the assets'
RetryPolicy retries them); errors it cannot fix subclass ``IbkrError``.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import dagster as dg
import pandas as pd
from pydantic import Field

# ib_async (and the asyncio machinery under it) is imported where a session uses it, not when
# the code location loads: most deployments never connect to Interactive Brokers.
if TYPE_CHECKING:
    from ib_async import IB, Contract, Order, Trade
    from ib_async import Fill as IbFill

T = TypeVar("T")
_log = logging.getLogger(__name__)

# TWS and IB Gateway default API ports; anything else (a socat'ed container) is not judged.
PAPER_PORTS = {7497: "TWS paper", 4002: "IB Gateway paper"}
LIVE_PORTS = {7496: "TWS live", 4001: "IB Gateway live"}
PACING_CODES = frozenset({162, 420})
NO_SECURITY_CODE = 200


class IbkrError(RuntimeError):
    """Interactive Brokers answered, and a retry would get the same answer (a domain error)."""


class UnknownSymbolError(IbkrError):
    """The symbol does not qualify to exactly one stock contract."""


class IbkrUnreachableError(ConnectionError):
    """The gateway cannot be reached, or dropped the connection twice: worth a retry later."""


class IbkrTimeoutError(ConnectionError):
    """A request got no answer within IBKR_REQUEST_TIMEOUT: worth a retry later."""


class IbkrPacingError(ConnectionError):
    """Historical-data pacing violations outlasted the bounded waits: worth a retry later."""


class IbkrPositionChangedError(ConnectionError):
    """The position moved while the order was being prepared (an exit filled first): a retry
    sizes the order again from the new position."""


def ib_symbol(symbol: str) -> str:
    """IBKR spells share classes with a space: BRK.B -> 'BRK B'."""
    return symbol.replace(".", " ")


def ref_matches(order_ref: str | None, prefix: str) -> bool:
    """Whether an orderRef belongs to the partition reference ``prefix`` (any signal suffix)."""
    return bool(order_ref) and (order_ref == prefix or order_ref.startswith(prefix + ":"))


def duration_for(sessions: int) -> str:
    """A reqHistoricalData duration covering ``sessions`` trading days (IBKR caps 'D' at 365)."""
    calendar_days = math.ceil(sessions * 7 / 5 * 1.04) + 10  # weekends, holidays, a margin
    if calendar_days <= 365:
        return f"{calendar_days} D"
    return f"{math.ceil(calendar_days / 365)} Y"


def bars_frame(bars: list[Any], as_of: dt.date, sessions: int) -> pd.DataFrame:
    """IBKR daily BarData -> the project's bar frame, never after ``as_of``, last ``sessions``."""
    rows = [
        {
            "date": pd.Timestamp(b.date if isinstance(b.date, dt.date) else str(b.date)[:10]),
            "open": float(b.open),
            "high": float(b.high),
            "low": float(b.low),
            "close": float(b.close),
            "volume": max(round(float(b.volume)), 0),
        }
        for b in bars
    ]
    frame = pd.DataFrame(rows).set_index("date").sort_index()
    frame["volume"] = frame["volume"].astype("int64")
    frame.index = pd.DatetimeIndex(frame.index.normalize().tz_localize(None), name="date")
    frame = frame[~frame.index.duplicated(keep="last")]
    return frame[frame.index.date <= as_of].tail(sessions)


class IbkrResource(dg.ConfigurableResource):
    """Where TWS / IB Gateway listens (IBKR_HOST, IBKR_PORT, IBKR_CLIENT_ID); how long to wait."""

    host: str = Field(default="127.0.0.1", description="IBKR_HOST")
    port: int = Field(default=7497, ge=1, le=65535, description="IBKR_PORT (7497 TWS paper)")
    client_id: int = Field(default=1, ge=0, description="IBKR_CLIENT_ID, unique per connection")
    account: str = Field(default="", description="IBKR_ACCOUNT; empty: the only managed account")
    connect_timeout_seconds: float = Field(default=10.0, gt=0, description="IBKR_CONNECT_TIMEOUT")
    request_timeout_seconds: float = Field(default=30.0, gt=0, description="IBKR_REQUEST_TIMEOUT")
    pacing_retries: int = Field(default=3, ge=0, le=10, description="waits on a pacing violation")
    pacing_wait_seconds: float = Field(default=15.0, ge=0, description="first wait; then doubles")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def describe(self) -> str:
        kind = PAPER_PORTS.get(self.port) or LIVE_PORTS.get(self.port) or "custom port"
        return f"{self.address} ({kind}), client id {self.client_id}"

    def new_ib(self) -> IB:
        """The ib_async client; tests override this to hand over a fake with the same API."""
        from ib_async import IB

        return IB()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    @contextmanager
    def session(self, log: logging.Logger | None = None) -> Iterator[IbkrSession]:
        """A connected session, disconnected when the block ends (also on errors)."""
        session = IbkrSession(self, log or _log)
        session.connect()
        try:
            yield session
        finally:
            session.close()


class IbkrSession:
    """One connection: qualified contracts, bars, orders by reference, account values."""

    def __init__(self, settings: IbkrResource, log: logging.Logger) -> None:
        self.settings = settings
        self.log = log
        self._ib: IB | None = None
        self._reconnects_left = 1
        self._contracts: dict[str, Contract] = {}

    # -- connection ------------------------------------------------------------------------------

    def connect(self) -> None:
        s = self.settings
        ib = s.new_ib()
        ib.RequestTimeout = s.request_timeout_seconds
        ib.RaiseRequestErrors = True
        try:
            ib.connect(
                s.host, s.port, clientId=s.client_id, timeout=s.connect_timeout_seconds,
                account=s.account,
            )
        except (OSError, TimeoutError) as exc:  # refused, unresolvable, timed out, reset
            _quiet_disconnect(ib)
            raise IbkrUnreachableError(
                f"Interactive Brokers is unreachable at {s.address} (client id {s.client_id}): "
                f"{type(exc).__name__}: {exc}. Start TWS or IB Gateway with the API enabled on "
                "that port, or fix IBKR_HOST / IBKR_PORT"
            ) from exc
        if not ib.isConnected():
            _quiet_disconnect(ib)
            raise IbkrUnreachableError(
                f"Interactive Brokers at {s.address} accepted the socket but the API session did "
                f"not start within {s.connect_timeout_seconds:g}s (IBKR_CONNECT_TIMEOUT): check "
                f"that client id {s.client_id} (IBKR_CLIENT_ID) is not already in use"
            )
        self._ib = ib

    def close(self) -> None:
        if self._ib is not None:
            _quiet_disconnect(self._ib)
            self._ib = None

    def _require(self) -> IB:
        if self._ib is None or not self._ib.isConnected():
            raise ConnectionError(f"not connected to {self.settings.address}")
        return self._ib

    def reconnect_once(self, what: str, cause: BaseException) -> None:
        """Reconnect after a dropped connection; the second drop in one session is an error."""
        if self._reconnects_left <= 0:
            raise IbkrUnreachableError(
                f"{what}: the connection to {self.settings.address} dropped again after one "
                f"reconnect ({cause}); the step will be retried"
            ) from cause
        self._reconnects_left -= 1
        self.log.warning(f"{what}: connection to {self.settings.address} dropped ({cause}); "
                         "reconnecting once")
        self.close()
        self.connect()

    def call(self, what: str, request: Callable[[IB], T], *, repeatable: bool = True) -> T:
        """Run one request; after a dropped connection, reconnect once and (if repeatable) rerun."""
        try:
            return self._timed(what, request)
        except IbkrTimeoutError:
            raise
        except ConnectionError as exc:
            self.reconnect_once(what, exc)
            if not repeatable:
                raise
        try:
            return self._timed(what, request)
        except IbkrTimeoutError:
            raise
        except ConnectionError as exc:
            raise IbkrUnreachableError(
                f"{what}: the connection to {self.settings.address} dropped again after one "
                f"reconnect ({exc}); the step will be retried"
            ) from exc

    def _timed(self, what: str, request: Callable[[IB], T]) -> T:
        try:
            return request(self._require())
        except TimeoutError as exc:  # asyncio's timeout; before ConnectionError: both OSErrors
            raise IbkrTimeoutError(
                f"{what} at {self.settings.address} got no answer within "
                f"{self.settings.request_timeout_seconds:g}s (IBKR_REQUEST_TIMEOUT)"
            ) from exc

    # -- contracts and bars ----------------------------------------------------------------------

    def stock(self, symbol: str) -> Contract:
        """The qualified SMART/USD stock contract; UnknownSymbolError when there is none."""
        from ib_async import Contract, Stock
        from ib_async.wrapper import RequestError

        if symbol in self._contracts:
            return self._contracts[symbol]
        wanted = Stock(ib_symbol(symbol), "SMART", "USD")
        try:
            found = self.call(f"qualify {symbol}", lambda ib: ib.qualifyContracts(wanted))
        except RequestError as exc:
            if exc.code != NO_SECURITY_CODE:
                raise IbkrError(f"qualifying {symbol} failed: IBKR error {exc.code}: "
                                f"{exc.message}") from exc
            found = []
        contract = found[0] if found else None
        if not isinstance(contract, Contract) or not contract.conId:
            raise UnknownSymbolError(
                f"Interactive Brokers has no single US stock {symbol!r} (SMART, USD) at "
                f"{self.settings.address}: fix the symbol in STOCK_SYMBOLS or the watchlist file"
            )
        self._contracts[symbol] = contract
        return contract

    def daily_bars(self, symbol: str, as_of: dt.date, sessions: int) -> pd.DataFrame:
        """Daily TRADES bars, regular trading hours, ending at ``as_of`` (never after)."""
        from ib_async.wrapper import RequestError

        contract = self.stock(symbol)
        s = self.settings
        end = f"{as_of:%Y%m%d} 23:59:59 US/Eastern"
        duration = duration_for(sessions)

        def request(ib: IB) -> list[Any]:
            return ib.reqHistoricalData(
                contract, endDateTime=end, durationStr=duration, barSizeSetting="1 day",
                whatToShow="TRADES", useRTH=True, formatDate=1,
                timeout=s.request_timeout_seconds,
            )

        wait = s.pacing_wait_seconds
        for attempt in range(s.pacing_retries + 1):
            try:
                bars = self.call(f"historical bars for {symbol}", request)
                break
            except RequestError as exc:
                pacing = exc.code in PACING_CODES and "pacing" in exc.message.lower()
                if not pacing:
                    raise IbkrError(
                        f"historical bars for {symbol} to {as_of} refused by IBKR: error "
                        f"{exc.code}: {exc.message} (a market data subscription for the "
                        "exchange is needed for TRADES bars)"
                    ) from exc
                if attempt == s.pacing_retries:
                    raise IbkrPacingError(
                        f"historical bars for {symbol}: still a pacing violation after "
                        f"{s.pacing_retries} waits; the step will be retried later"
                    ) from exc
                self.log.warning(f"IBKR pacing violation for {symbol}; waiting {wait:g}s "
                                 f"({attempt + 1}/{s.pacing_retries})")
                s.sleep(wait)
                wait *= 2
        if not bars:
            # ib_async returns an empty list when the request timed out.
            raise IbkrTimeoutError(
                f"no daily bars for {symbol} up to {as_of} from {s.address} within "
                f"{s.request_timeout_seconds:g}s (IBKR_REQUEST_TIMEOUT)"
            )
        frame = bars_frame(list(bars), as_of, sessions)
        if frame.empty:
            raise IbkrError(f"IBKR returned no daily bar for {symbol} on or before {as_of}")
        return frame

    # -- orders ----------------------------------------------------------------------------------

    def trades_with_ref(self, prefix: str) -> list[Trade]:
        """Open and completed orders (all clients) whose orderRef belongs to ``prefix``."""
        open_trades = self.call("open orders", lambda ib: ib.reqAllOpenOrders())
        done = self.call("completed orders", lambda ib: ib.reqCompletedOrders(apiOnly=True))
        seen: dict[tuple[int, int, int], Trade] = {}
        for trade in [*open_trades, *done]:
            if not ref_matches(trade.order.orderRef, prefix):
                continue
            o = trade.order
            key = (o.permId, 0, 0) if o.permId else (-1, o.clientId, o.orderId)
            seen.setdefault(key, trade)
        return list(seen.values())

    def all_order_refs(self) -> set[str]:
        open_trades = self.call("open orders", lambda ib: ib.reqAllOpenOrders())
        done = self.call("completed orders", lambda ib: ib.reqCompletedOrders(apiOnly=True))
        fills = self.executions()
        refs = {t.order.orderRef for t in [*open_trades, *done]}
        return {r for r in refs | {f.execution.orderRef for f in fills} if r}

    def executions(self, since: dt.date | None = None) -> list[IbFill]:
        """Executions (fills) the gateway reports, optionally only from ``since`` on."""
        from ib_async import ExecutionFilter

        filt = ExecutionFilter(acctCode=self.settings.account)
        if since is not None:
            filt.time = f"{since:%Y%m%d} 00:00:00 US/Eastern"
        return list(self.call("executions", lambda ib: ib.reqExecutions(filt)))

    def place(self, contract: Contract, orders: list[Any]) -> list[Trade]:
        """Transmit orders (a bracket's legs in order). Never re-sent after a dropped connection:
        the caller looks the reference up instead."""

        def send(ib: IB) -> list[Trade]:
            return [ib.placeOrder(contract, order) for order in orders]

        return self.call(f"place {orders[0].orderRef}", send, repeatable=False)

    def bracket(
        self, side: str, quantity: float, limit: float, take_profit: float, stop_loss: float,
        *, oca_group: str, oca_type: int,
    ) -> list[Any]:
        """Entry, take profit, stop loss. The exits are attached to the entry and also share an
        explicit one-cancels-other group, so one filling cancels the other."""
        from ib_async import IB

        ib = self._require()
        entry, take, stop = ib.bracketOrder(side, quantity, limit, take_profit, stop_loss)
        IB.oneCancelsAll([take, stop], oca_group, oca_type)
        return [entry, take, stop]

    def cancel(self, order: Order) -> None:
        """Ask the gateway to cancel ``order``; see ``wait_until`` for the confirmation."""
        self.call(f"cancel {order.orderRef} #{order.orderId}", lambda ib: ib.cancelOrder(order))

    def resize(self, contract: Contract, order: Order, total_quantity: float) -> None:
        """Modify a working order's size (same orderId); see ``wait_until`` for the confirmation."""
        order.totalQuantity = total_quantity
        order.transmit = True  # a bracket's take profit was created with transmit=False
        self.call(f"resize {order.orderRef} #{order.orderId} to {total_quantity:g}",
                  lambda ib: ib.placeOrder(contract, order))

    def wait_until(self, what: str, settled: Callable[[], bool], poll_seconds: float = 0.5) -> None:
        """Poll ``settled`` until it holds; IbkrTimeoutError after IBKR_REQUEST_TIMEOUT."""
        s = self.settings
        deadline = time.monotonic() + s.request_timeout_seconds
        while not settled():
            if time.monotonic() >= deadline:
                raise IbkrTimeoutError(
                    f"{what} at {s.address}: not confirmed within "
                    f"{s.request_timeout_seconds:g}s (IBKR_REQUEST_TIMEOUT); nothing else was "
                    "sent, and the retry looks at the orders again first"
                )
            s.sleep(poll_seconds)

    @staticmethod
    def limit(side: str, quantity: float, limit: float) -> Any:
        from ib_async import LimitOrder

        return LimitOrder(side, quantity, limit)

    # -- account ---------------------------------------------------------------------------------

    def account_id(self) -> str:
        accounts = self.call("managed accounts", lambda ib: ib.managedAccounts())
        wanted = self.settings.account
        if wanted:
            if wanted not in accounts:
                raise IbkrError(
                    f"IBKR_ACCOUNT={mask_account(wanted)} is not an account of the session at "
                    f"{self.settings.address} (it manages "
                    f"{', '.join(mask_account(a) for a in accounts) or 'none'})"
                )
            return wanted
        if len(accounts) != 1:
            raise IbkrError(
                f"the session at {self.settings.address} manages {len(accounts)} accounts "
                f"({', '.join(mask_account(a) for a in accounts)}): set IBKR_ACCOUNT to one"
            )
        return accounts[0]

    def account_values(self, account: str) -> dict[str, float]:
        """NetLiquidation, TotalCashValue, UnrealizedPnL, RealizedPnL (base currency)."""
        values: dict[str, float] = {}
        rank = {"BASE": 0, "USD": 1}
        best: dict[str, int] = {}
        for v in self.call("account values", lambda ib: ib.accountValues(account)):
            if v.currency not in rank:
                continue
            try:
                number = float(v.value)
            except ValueError:
                continue
            if rank[v.currency] < best.get(v.tag, 99):
                values[v.tag], best[v.tag] = number, rank[v.currency]
        if "NetLiquidation" not in values:
            raise IbkrTimeoutError(
                f"no NetLiquidation value for account {mask_account(account)} from "
                f"{self.settings.address} yet; the step will be retried"
            )
        return values

    def portfolio(self, account: str) -> list[Any]:
        return list(self.call("portfolio", lambda ib: ib.portfolio(account)))

    def positions(self, account: str) -> list[Any]:
        return list(self.call("positions", lambda ib: ib.positions(account)))


def mask_account(account: str) -> str:
    """Account ids in messages and logs show only their kind and last characters."""
    return account if len(account) <= 4 else f"{account[:2]}***{account[-3:]}"


def _quiet_disconnect(ib: IB) -> None:
    try:
        ib.disconnect()
    except Exception:  # noqa: BLE001 - closing a broken socket must not hide the real error
        _log.debug("disconnect after a failed connection raised", exc_info=True)
