"""A backfill the Dagster way: launched through the webserver's GraphQL API, run by the daemon.

Two `dagster dev` servers side by side (the daemon looks at new backfills every 30 s, so most of
a small backfill's time is waiting; run together, the two waits overlap):

- the paper simulator (TRADING_MODE=simulate), 2 symbols x 5 trading days: every asset
  partition is stored and materialized, each symbol's days are decided oldest first, the
  simulator holds at most one order per symbol and day, and the backfill's page counts every
  partition as materialized;
- an IBKR paper account (TRADING_MODE=ibkr-paper) behind a fake gateway on a socket, over days
  ending at the latest completed session, the one day an order may go to a broker, with CSV
  bars (real data as far as the order rules go): nothing reaches the gateway, and every order
  artifact says the backfill is why.
"""

from __future__ import annotations

import datetime as dt
import json
import socketserver
import sqlite3
import struct
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from ib_async import IB, Contract, LimitOrder, Order

from bench.pipeline import trading_days
from tests.ibkr.fake_ib import FakeGateway, FakeIB
from tests.native_backfill import BackfillOutcome, run_native_backfill
from tests.servers import free_port
from trading_assets.analysis.offline import analyse
from trading_assets.calendar import latest_completed_session
from trading_assets.indicators import indicator_snapshot
from trading_assets.market_data.synthetic import synthetic_bars
from trading_assets.models import Action

# `dagster dev` servers and their daemons: run after the parallel suite, alone (Makefile).
pytestmark = [pytest.mark.integration, pytest.mark.serial]

# Five sessions on which the offline analyst buys both symbols (synthetic bars): the simulator
# gets an order every day, so the order of its rows shows the order the days were decided in.
SIM_SYMBOLS = ("TSLA", "META")
SIM_DAYS = trading_days(5, last=dt.date(2025, 3, 25))
IBKR_DAYS = 3
HISTORY = 520  # MARKET_HISTORY_DAYS' default: what market_data reads from the CSV
BACKFILL_TIMEOUT_S = 420.0


# -- a fake IB gateway on a socket ---------------------------------------------------------------

SERVER_VERSION = 178  # the newest API version ib_async 2.x speaks


def _frame(*fields: object) -> bytes:
    body = b"".join(str(f).encode() + b"\0" for f in fields)
    return struct.pack(">I", len(body)) + body


class _Session(socketserver.BaseRequestHandler):
    """One API client: the handshake, the requests ib_async sends on connect, orders."""

    server: _GatewayServer

    def _read(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.request.recv(size - len(data))
            if not chunk:
                raise ConnectionError("client closed")
            data += chunk
        return data

    def _message(self) -> list[str]:
        (size,) = struct.unpack(">I", self._read(4))
        return self._read(size).decode(errors="replace").split("\0")[:-1]

    def handle(self) -> None:
        wire = self.server.wire
        try:
            assert self._read(4) == b"API\0", "not an IB API client"
            self._message()  # the version range it speaks
            self.request.sendall(_frame(SERVER_VERSION, "20250101 00:00:00 UTC"))
            client = FakeIB(wire.gateway)
            while True:
                fields = self._message()
                wire.messages.append(fields)
                for reply in self._answer(client, fields):
                    self.request.sendall(reply)
        except ConnectionError:
            return

    def _answer(self, client: FakeIB, fields: list[str]) -> list[bytes]:
        gateway = self.server.wire.gateway
        kind = int(fields[0])
        if kind == 71:  # startApi: the client id
            client.connect(clientId=int(fields[2]))
            return [_frame(9, 1, gateway.next_id()), _frame(15, 1, gateway.account)]
        if kind == 3:  # placeOrder: orderId, the contract's 12 fields, ..., orderRef
            contract = Contract(conId=int(fields[2] or 0), symbol=fields[3], secType=fields[4],
                                exchange=fields[9], currency=fields[11])
            order = Order(orderId=int(fields[1]), action=fields[16],
                          totalQuantity=float(fields[17]), orderType=fields[18],
                          orderRef=fields[26])
            client.placeOrder(contract, order)
            return []
        ends = {  # the end of each list ib_async asks for while it connects: all empty here
            61: [_frame(62, 1)],  # positions
            5: [_frame(53, 1)],  # open orders
            99: [_frame(102)],  # completed orders
            6: [_frame(54, 1, fields[-1])],  # account updates (for that account)
            76: [_frame(74, 1, fields[2])] if len(fields) > 2 else [],  # per account (reqId)
            7: [_frame(55, 1, fields[2])] if len(fields) > 2 else [],  # executions (reqId)
        }
        return ends.get(kind, [])


class _GatewayServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    wire: WireGateway


@dataclass
class WireGateway:
    """tests/ibkr/fake_ib.py's ``FakeGateway`` behind a socket that speaks the IB API, so a
    process Dagster starts (a run worker) reaches it at IBKR_HOST:IBKR_PORT like TWS; every
    message is kept, and placed orders land in the gateway (``gateway.placed()``)."""

    gateway: FakeGateway
    port: int
    messages: list[list[str]]

    def placed(self) -> list[str]:
        return [o.order.orderRef for o in self.gateway.placed()]


@pytest.fixture(scope="module")
def wire_gateway() -> Iterator[WireGateway]:
    wire = WireGateway(FakeGateway(), free_port(), [])
    server = _GatewayServer(("127.0.0.1", wire.port), _Session)
    server.wire = wire
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              daemon=True)
    thread.start()
    try:
        yield wire
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


# -- the two backfills, side by side -----------------------------------------------------------


def _actionable(symbol: str, day: dt.date) -> bool:
    """Whether the offline analyst trades ``symbol`` on ``day`` (the bars market_data reads)."""
    answer = analyse(indicator_snapshot(synthetic_bars(symbol, day, HISTORY).bars))
    return answer.action is not Action.HOLD and answer.confidence_score >= 50


def _symbol_to_trade(day: dt.date) -> str:
    """A ticker whose signal on ``day`` is a trade: the backfill rule alone keeps it from IBKR."""
    candidates = ("AAPL", "MSFT", "META", "GOOG", "TSLA", "NVDA", "AMZN", "NFLX", "AMD", "INTC",
                  "ORCL", "IBM", "QCOM", "ADBE", "CSCO", "PEP")
    return next((s for s in candidates if _actionable(s, day)), candidates[0])


@dataclass(frozen=True)
class Scenario:
    outcome: BackfillOutcome
    data: Path  # TRADING_DATA_DIR
    home: Path  # DAGSTER_HOME
    seconds: float  # the whole scenario: server start, backfill, server stop
    gateway_seen: tuple[int, int, list[str]] = (0, 0, [])  # connections, messages, orders


def _timed(root: Path, symbols: tuple[str, ...], days: list[dt.date],
           settings: dict[str, str] | None = None) -> tuple[BackfillOutcome, Path, float]:
    started = time.monotonic()
    sandbox = {"DAGSTER_HOME": str(root / "dagster_home"), "TRADING_DATA_DIR": str(root / "data")}
    outcome = run_native_backfill(sandbox, symbols, days, settings, timeout=BACKFILL_TIMEOUT_S)
    return outcome, root, time.monotonic() - started


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory,
              wire_gateway: WireGateway) -> Iterator[dict[str, Future]]:
    latest = latest_completed_session(dt.datetime.now(dt.UTC))
    symbol = _symbol_to_trade(latest)
    market = tmp_path_factory.mktemp("market")
    # Synthetic bars written as CSV: to the order rules a CSV source is real data (synthetic data
    # is never traded), so on the latest session only the backfill rule stands between the
    # signal and the gateway.
    bars = synthetic_bars(symbol, latest, HISTORY + 40).bars
    bars.reset_index().to_csv(market / f"{symbol}.csv", index=False)
    ibkr = {
        "TRADING_MODE": "ibkr-paper", "MARKET_DATA_SOURCE": "csv",
        "MARKET_DATA_DIR": str(market), "IBKR_HOST": "127.0.0.1",
        "IBKR_PORT": str(wire_gateway.port), "IBKR_CONNECT_TIMEOUT": "5",
    }
    started = time.monotonic()
    with ThreadPoolExecutor(2, thread_name_prefix="native-backfill") as pool:
        futures = {
            "simulate": pool.submit(_timed, tmp_path_factory.mktemp("simulate"), SIM_SYMBOLS,
                                    SIM_DAYS),
            "ibkr": pool.submit(_timed, tmp_path_factory.mktemp("ibkr"), (symbol,),
                                trading_days(IBKR_DAYS, last=latest), ibkr),
        }
        for future in futures.values():
            future.exception()  # wait for both
    print(f"\nnative backfills: {time.monotonic() - started:.0f} s for both scenarios")
    yield futures


def _scenario(scenarios: dict[str, Future], name: str,
              wire: WireGateway | None = None) -> Scenario:
    outcome, root, seconds = scenarios[name].result()  # re-raises that scenario's own error
    seen = (wire.gateway.connections, len(wire.messages), wire.placed()) if wire else (0, 0, [])
    print(f"\n{name}: {outcome.status} in {seconds:.0f} s ({len(outcome.runs)} runs; launch -> "
          f"first run start {outcome.seconds_to_first_run_start or 0:.0f} s, -> last run end "
          f"{outcome.seconds_to_last_run_end or 0:.0f} s, -> {outcome.status} "
          f"{outcome.seconds_to_status:.0f} s); progress samples {outcome.timeline}")
    return Scenario(outcome, root / "data", root / "dagster_home", seconds, seen)


@pytest.fixture(scope="module")
def simulated(scenarios: dict[str, Future]) -> Scenario:
    return _scenario(scenarios, "simulate")


@pytest.fixture(scope="module")
def ibkr_paper(scenarios: dict[str, Future], wire_gateway: WireGateway) -> Scenario:
    # What the gateway had seen once the backfill ended, before any test talks to it.
    return _scenario(scenarios, "ibkr", wire_gateway)


# -- what the stores hold ------------------------------------------------------------------------


def _rows(database: Path, sql: str, *args: Any) -> list[sqlite3.Row]:
    with closing(sqlite3.connect(database)) as connection:
        connection.row_factory = sqlite3.Row
        return connection.execute(sql, args).fetchall()


def _artifacts(scenario: Scenario, asset: str | None = None) -> list[sqlite3.Row]:
    """Rows of the artifacts table (SPEC: one per stored artifact), oldest first."""
    where, args = ("WHERE step_name = ?", (asset,)) if asset else ("", ())
    return _rows(scenario.data / "artifacts.db",
                 f"SELECT id, step_name, symbol, partition_key, partition_date, action, "
                 f"confidence, artifact_metadata FROM artifacts {where} ORDER BY created_at, id",
                 *args)


def _materialized(scenario: Scenario) -> dict[str, set[str]]:
    with dg.DagsterInstance.from_config(str(scenario.home)) as instance:
        return {
            asset: set(instance.get_materialized_partitions(dg.AssetKey(asset.split("/"))))
            for asset in scenario.outcome.assets
        }


def _in_order(rows: list[sqlite3.Row], symbol: str, day: str) -> dict[str, list[str]]:
    """Each symbol's days in the order ``rows`` (oldest first) hold them."""
    days: dict[str, list[str]] = {}
    for row in rows:
        days.setdefault(row[symbol], []).append(str(row[day]))
    return days


# -- the paper simulator --------------------------------------------------------------------------


def test_the_backfill_completes_and_every_asset_partition_is_stored_and_materialized(
    simulated: Scenario,
) -> None:
    outcome = simulated.outcome
    assert outcome.status in ("COMPLETED", "COMPLETED_SUCCESS"), (outcome.error, outcome.runs)
    assert outcome.runs and all(r.status == "SUCCESS" for r in outcome.runs)
    targeted = set(outcome.partitions)
    assert len(targeted) == len(SIM_SYMBOLS) * len(SIM_DAYS)
    # The trading graph, evaluation left out (it reads bars after the day decided).
    assert {"market_data", "order", "portfolio", "mlflow_run"} <= set(outcome.assets)
    assert "signal_outcome" not in outcome.assets
    for asset, partitions in _materialized(simulated).items():
        assert targeted <= partitions, f"{asset}: not materialized {sorted(targeted - partitions)}"
    # mlflow_run stores no artifact of its own: it puts its MLflow ids on the others' rows.
    stored: dict[str, set[str]] = {}
    for row in _artifacts(simulated):
        stored.setdefault(row["step_name"], set()).add(row["partition_key"])
    for asset in set(outcome.assets) - {"mlflow_run"}:
        missing = targeted - stored.get(asset, set())
        assert not missing, f"{asset}: no artifact for {sorted(missing)}"


def test_the_backfill_page_counts_every_partition_as_materialized(simulated: Scenario) -> None:
    outcome = simulated.outcome
    assert outcome.num_partitions == len(outcome.partitions)
    assert {p.asset for p in outcome.progress} == set(outcome.assets)
    for line in outcome.progress:
        # Not "0 succeeded" once the runs are done: every targeted partition counts.
        assert (line.targeted, line.materialized, line.in_progress, line.failed) == (
            len(outcome.partitions), len(outcome.partitions), 0, 0), line


def test_each_symbols_days_are_decided_oldest_first(simulated: Scenario) -> None:
    days = [d.isoformat() for d in SIM_DAYS]
    orders = _artifacts(simulated, "order")
    assert _in_order(orders, "symbol", "partition_date") == {s: days for s in SIM_SYMBOLS}
    paper = simulated.data / "paper_broker.db"
    # The simulator marks every partition to its close before deciding it, in insertion order.
    marks = _rows(paper, "SELECT symbol, mark_date FROM paper_marks ORDER BY rowid")
    assert _in_order(marks, "symbol", "mark_date") == {s: days for s in SIM_SYMBOLS}
    tickets = _rows(paper, "SELECT symbol, trade_date FROM paper_orders ORDER BY rowid")
    placed = _in_order(tickets, "symbol", "trade_date")
    assert placed, "the offline analyst buys on these days: the simulator should hold orders"
    assert placed == {s: sorted(d) for s, d in placed.items()}


def test_the_simulator_holds_at_most_one_order_per_symbol_and_day(simulated: Scenario) -> None:
    tickets = _rows(simulated.data / "paper_broker.db",
                    "SELECT symbol, trade_date, count(*) AS n FROM paper_orders "
                    "GROUP BY symbol, trade_date")
    assert all(t["n"] == 1 for t in tickets)
    # And each order the artifacts say was placed is the simulator's one order of that day.
    placed = {(r["symbol"], str(r["partition_date"])) for r in _artifacts(simulated, "order")
              if json.loads(r["artifact_metadata"]).get("placed")}
    assert placed == {(t["symbol"], str(t["trade_date"])) for t in tickets}


# -- an IBKR paper account ------------------------------------------------------------------------


def test_a_backfill_in_ibkr_paper_mode_sends_nothing_to_the_gateway(
    ibkr_paper: Scenario,
) -> None:
    outcome = ibkr_paper.outcome
    assert outcome.status in ("COMPLETED", "COMPLETED_SUCCESS"), (outcome.error, outcome.runs)
    connections, messages, placed = ibkr_paper.gateway_seen
    assert (connections, messages, placed) == (0, 0, []), "a backfill reached the gateway"
    orders = _artifacts(ibkr_paper, "order")
    assert {r["partition_key"] for r in orders} == set(outcome.partitions)
    backfill_tag = f"dagster/backfill={outcome.backfill_id}"
    for row in orders:
        metadata = json.loads(row["artifact_metadata"])
        assert metadata["mode"] == "ibkr-paper" and metadata["placed"] is False
        assert metadata["reason"].startswith(f"not traded: backfill run ({backfill_tag})"), (
            metadata["reason"])
    # Not a vacuous check: the latest session, on bars that are not synthetic, has a signal to
    # trade, so only the backfill rule kept its order from the broker.
    latest = max(outcome.partitions)
    signal = next(r for r in _artifacts(ibkr_paper, "trading_signal")
                  if r["partition_key"] == latest)
    assert signal["action"] in ("BUY", "SELL") and signal["confidence"] >= 50, dict(signal)


def test_the_fake_gateway_would_have_seen_an_order(
    ibkr_paper: Scenario, wire_gateway: WireGateway
) -> None:
    # The same socket, with ib_async as the run worker would use it: the order arrives.
    ib = IB()
    ib.connect("127.0.0.1", wire_gateway.port, clientId=42, timeout=10)
    try:
        contract = Contract(symbol="TSLA", secType="STK", exchange="SMART", currency="USD")
        ib.placeOrder(contract, LimitOrder("BUY", 1, 100.0, orderRef="control-order"))
        deadline = time.monotonic() + 10
        while "control-order" not in wire_gateway.placed() and time.monotonic() < deadline:
            ib.sleep(0.1)
    finally:
        ib.disconnect()
    assert wire_gateway.placed() == ["control-order"]
