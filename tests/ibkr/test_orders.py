"""Orders at IBKR (through the fake gateway): at most one per symbol and day, whatever happens."""

from __future__ import annotations

import random
from typing import Any

import dagster as dg
import pytest

from resources.broker import LIVE_CONFIRMATION, BrokerResource
from resources.ibkr import IbkrUnreachableError
from tests.ibkr.conftest import (
    LATEST,
    Materialize,
    buy_signal,
    checks,
    step_error,
    wired,
)
from tests.ibkr.fake_ib import (
    CRASH_AFTER,
    DROP,
    DROP_AFTER,
    PASS,
    FakeGateway,
    ProcessCrash,
    market_bars,
)
from trading_assets.calendar import previous_session
from trading_assets.environment import SettingError, resources_from_environment
from trading_assets.execution.assets import order
from trading_assets.execution.placement import OrderRequest, place_once
from trading_assets.execution.rules import RiskLimits
from trading_assets.models import MarketData, OrderDecision


def _decision(result: dg.ExecuteInProcessResult) -> OrderDecision:
    return result.output_for_node("order")


def test_a_bracket_goes_out_once_and_rematerializing_returns_it(
    ibkr_env: dict[str, str], gateway: FakeGateway, materialize: Materialize
) -> None:
    resources = wired(ibkr_env, gateway)
    first = materialize(resources)
    assert first.success, checks(first)
    placed = _decision(first)
    assert placed.placed and not placed.reused_existing and placed.mode == "ibkr-paper"
    assert placed.order.order_ref == f"ts:TSLA:{LATEST}:BUY"
    legs = sorted((o.order.orderType, o.order.action, o.order.parentId != 0, o.order.tif)
                  for o in gateway.placed())
    assert legs == [("LMT", "BUY", False, "DAY"), ("LMT", "SELL", True, "GTC"),
                    ("STP", "SELL", True, "GTC")]
    assert {o.order.orderRef for o in gateway.placed()} == {placed.order.order_ref}
    assert (placed.order.stop_loss, placed.order.take_profit) == (95.0, 110.0)
    assert result_source(first) == "ibkr"

    gateway.fill(gateway.parents()[0], 99.5)
    again = materialize(resources, signal=buy_signal(action="SELL"))  # the signal changed
    assert again.success
    assert _decision(again).reused_existing and _decision(again).order == placed.order
    assert len(gateway.placed()) == 3

    snapshot = again.output_for_node("portfolio")
    assert snapshot.positions[0].symbol == "TSLA" and snapshot.positions[0].quantity == 100
    assert snapshot.cash == pytest.approx(100_000 - 9_950)
    assert [f.order_ref for f in snapshot.fills_today] == [placed.order.order_ref]


def result_source(result: dg.ExecuteInProcessResult) -> str:
    return result.output_for_node("market_data").source


def _request(gateway: FakeGateway, **kw: Any) -> OrderRequest:
    symbol, day = kw.get("symbol", "TSLA"), kw.get("day", LATEST)
    bars = market_bars(symbol, day, 60, gateway.closes.get(symbol))
    market = MarketData(symbol=symbol, as_of=day, source="ibkr", source_detail="fake",
                        bars=bars)
    fields: dict[str, Any] = dict(symbol="TSLA", day=LATEST, mode="ibkr-paper",
                                  signal=buy_signal(), market=market, limits=RiskLimits(),
                                  latest_session=LATEST)
    fields.update(kw)
    return OrderRequest(**fields)


def test_a_hundred_materializations_and_retries_give_exactly_one_order(
    ibkr_env: dict[str, str], gateway: FakeGateway
) -> None:
    """The order asset's decision path, 100 times, with the faults a retry meets on the way."""
    broker = wired(ibkr_env, gateway)["broker"]
    # Before the order exists: the gateway refuses, the socket drops on the first leg, the
    # process dies right after the last leg went out. Then faults on every later lookup.
    gateway.fail("connect", OSError("connection refused"))
    gateway.fail("placeOrder", DROP)
    gateway.fail("placeOrder", PASS, times=2)
    gateway.fail("placeOrder", CRASH_AFTER)
    rng = random.Random(7)
    lookups = ["reqAllOpenOrders", "reqCompletedOrders", "reqExecutions", "managedAccounts"]
    outcomes = {"placed": 0, "reused": 0, "retried": 0}
    for attempt in range(100):
        if attempt > 3 and rng.random() < 0.3:
            gateway.fail(rng.choice(lookups), DROP, times=rng.choice([1, 2]))  # 2: step retry
        try:
            decision, _ = place_once(_request(gateway), prior=None,
                                     open_venue=lambda: broker.venue())
        except (ConnectionError, ProcessCrash):  # the step fails; Dagster retries it
            outcomes["retried"] += 1
            continue
        outcomes["reused" if decision.reused_existing else "placed"] += 1
        assert decision.placed
    for method in list(gateway.faults):
        gateway.faults[method].clear()
    assert len(gateway.parents()) == 1, gateway.placed()
    assert len({o.order.orderRef for o in gateway.placed()}) == 1
    assert outcomes["placed"] == 0 and outcomes["retried"] >= 4  # the crash placed it
    assert outcomes["placed"] + outcomes["reused"] + outcomes["retried"] == 100


def test_a_crash_right_after_submit_gives_no_second_order_on_retry(
    ibkr_env: dict[str, str], gateway: FakeGateway, materialize: Materialize
) -> None:
    resources = wired(ibkr_env, gateway)
    gateway.fail("placeOrder", PASS, times=2)
    gateway.fail("placeOrder", CRASH_AFTER)  # the bracket is out; nothing was recorded
    crashed = materialize(resources)
    assert not crashed.success and len(gateway.placed()) == 3
    assert not [e for e in crashed.get_asset_materialization_events()
                if e.asset_key == dg.AssetKey("order")]

    retry = materialize(resources)
    assert retry.success
    assert _decision(retry).reused_existing
    assert len(gateway.parents()) == 1 and len(gateway.placed()) == 3


def test_a_dropped_connection_while_sending_is_resolved_by_the_reference(
    ibkr_env: dict[str, str], gateway: FakeGateway, materialize: Materialize
) -> None:
    gateway.fail("placeOrder", PASS, times=2)
    gateway.fail("placeOrder", DROP_AFTER)
    result = materialize(wired(ibkr_env, gateway))
    assert result.success
    assert _decision(result).placed and len(gateway.placed()) == 3
    assert gateway.connections == 3 + 1  # market_data, order (+1 reconnect), portfolio


def test_a_disconnect_mid_run_reconnects_once_and_carries_on(
    ibkr_env: dict[str, str], gateway: FakeGateway, materialize: Materialize
) -> None:
    gateway.fail("reqHistoricalData", DROP)
    gateway.fail("reqAllOpenOrders", DROP)
    result = materialize(wired(ibkr_env, gateway))
    assert result.success
    assert _decision(result).placed and len(gateway.parents()) == 1
    assert gateway.connections == 3 + 2


def test_an_unknown_symbol_fails_market_data_without_retries(
    ibkr_env: dict[str, str], gateway: FakeGateway, materialize: Materialize
) -> None:
    result = materialize(wired(ibkr_env, gateway), symbol="ZZZZ")
    assert not result.success
    assert "'ZZZZ'" in step_error(result, "market_data")
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert gateway.calls["reqHistoricalData"] == 0 and gateway.placed() == []


def test_synthetic_data_never_reaches_the_broker(
    ibkr_env: dict[str, str], gateway: FakeGateway, materialize: Materialize
) -> None:
    env = {**ibkr_env, "MARKET_DATA_SOURCE": "synthetic"}
    result = materialize(wired(env, gateway))
    assert result.success
    decision = _decision(result)
    assert not decision.placed and decision.reason == "not traded: synthetic market data"
    assert gateway.placed() == [] and all(checks(result).values())


@pytest.mark.parametrize("tag", ["dagster/backfill", "trading-signals/backfill"])
def test_a_backfill_never_reaches_the_broker(
    tag: str, ibkr_env: dict[str, str], gateway: FakeGateway, materialize: Materialize
) -> None:
    result = materialize(wired(ibkr_env, gateway), tags={tag: "bf-1"})
    assert result.success
    decision = _decision(result)
    assert not decision.placed and decision.reason.startswith("not traded: backfill run")
    assert tag in decision.reason
    assert gateway.placed() == [] and gateway.calls["reqAllOpenOrders"] == 0
    assert result.output_for_node("portfolio").source.startswith("ibkr-paper: not read")
    assert gateway.connections == 1  # market data only


def test_an_older_partition_is_never_sent_to_a_real_broker(
    ibkr_env: dict[str, str], gateway: FakeGateway, materialize: Materialize
) -> None:
    day = previous_session(LATEST)
    result = materialize(wired(ibkr_env, gateway), signal=buy_signal(day=day), day=day)
    assert result.success
    decision = _decision(result)
    assert not decision.placed and "not traded: historical partition" in decision.reason
    assert gateway.placed() == []


def test_sizing_limits_cap_the_quantity(ibkr_env: dict[str, str], gateway: FakeGateway) -> None:
    broker = wired(ibkr_env, gateway)["broker"]
    limits = RiskLimits(max_notional_per_order=5_000)  # 10% of 100k would be 100 shares
    decision, gates = place_once(_request(gateway, limits=limits), prior=None,
                                 open_venue=broker.venue)
    assert decision.order.quantity == 50 and "capped by max notional" in decision.reason
    assert all(g.passed for g in gates)
    assert gateway.parents()[0].order.totalQuantity == 50

    fixed = RiskLimits(sizing="fixed", fixed_shares=7)
    decision, _ = place_once(_request(gateway, limits=fixed, symbol="NVDA",
                                      signal=buy_signal("NVDA")),
                             prior=None, open_venue=broker.venue)
    assert decision.order.quantity == 7


def test_live_trading_needs_both_settings(
    ibkr_env: dict[str, str], gateway: FakeGateway, materialize: Materialize
) -> None:
    env = {**ibkr_env, "TRADING_MODE": "ibkr-live", "IBKR_PORT": "4001"}
    # Refused before anything runs, with the setting to add...
    with pytest.raises(SettingError, match="IBKR_LIVE_CONFIRM=I-UNDERSTAND-REAL-MONEY"):
        resources_from_environment(env)
    # ...and by the order step itself, should a live broker without it get there another way.
    gateway.accounts = [gateway.account] = ["U7654321"]
    resources = wired({**env, "IBKR_LIVE_CONFIRM": LIVE_CONFIRMATION}, gateway)
    broker = resources["broker"]
    resources["broker"] = BrokerResource(
        mode=broker.mode, paper_state_url=broker.paper_state_url,
        starting_cash=broker.starting_cash, live_confirm="", ibkr=broker.ibkr,
    )
    result = materialize(resources)
    assert not result.success
    assert "IBKR_LIVE_CONFIRM=I-UNDERSTAND-REAL-MONEY" in step_error(result, "order")
    assert gateway.placed() == []
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


def test_the_order_asset_retries_network_errors_and_not_domain_errors() -> None:
    policy = order.op.retry_policy
    assert policy.max_retries >= 1 and policy.backoff == dg.Backoff.EXPONENTIAL
    assert policy.jitter is not None
    assert order.op.pool == "broker"
    assert issubclass(IbkrUnreachableError, ConnectionError)


def test_a_retry_after_a_gateway_restart_finds_the_order(
    ibkr_env: dict[str, str], gateway: FakeGateway
) -> None:
    broker = wired(ibkr_env, gateway)["broker"]
    place_once(_request(gateway), prior=None, open_venue=broker.venue)
    gateway.up = False
    with pytest.raises(IbkrUnreachableError):
        place_once(_request(gateway), prior=None, open_venue=broker.venue)
    gateway.up = True
    decision, _ = place_once(_request(gateway), prior=None, open_venue=broker.venue)
    assert decision.reused_existing and len(gateway.parents()) == 1


def test_the_paper_mode_refuses_a_live_account(
    ibkr_env: dict[str, str], gateway: FakeGateway
) -> None:
    gateway.accounts = [gateway.account] = ["U7654321"]
    broker = wired(ibkr_env, gateway)["broker"]
    with pytest.raises(Exception, match="a live account"):
        place_once(_request(gateway), prior=None, open_venue=broker.venue)
    assert gateway.placed() == []


def test_stored_decisions_are_reused_without_contacting_the_broker(
    ibkr_env: dict[str, str], gateway: FakeGateway
) -> None:
    broker = wired(ibkr_env, gateway)["broker"]
    first, _ = place_once(_request(gateway), prior=None, open_venue=broker.venue)
    gateway.up = False
    again, _ = place_once(_request(gateway), prior=first, open_venue=broker.venue)
    assert again.reused_existing and again.order == first.order




def test_a_hundred_real_materializations_of_order_send_one_bracket(
    ibkr_env: dict[str, str], gateway: FakeGateway, instance: dg.DagsterInstance,
    materialize: Materialize,
) -> None:
    """The asset itself (IO manager, stored-order lookup, gateway lookups), not just its rules."""
    from tests.ibkr.conftest import signal_asset
    from trading_assets.market_data.assets import market_data
    from trading_assets.partitions import partition_key_for

    resources = wired(ibkr_env, gateway)
    assert materialize(resources).success
    assert len(gateway.placed()) == 3  # entry, stop loss, take profit
    assets = [market_data, signal_asset(buy_signal(action="SELL")), order]
    for _ in range(100):
        result = dg.materialize(
            assets, selection=[order], partition_key=partition_key_for("TSLA", LATEST),
            resources=resources, instance=instance,
        )
        assert _decision(result).reused_existing
    assert len(gateway.placed()) == 3
    assert {o.order.orderRef for o in gateway.placed()} == {f"ts:TSLA:{LATEST}:BUY"}


def test_verify_compares_the_gateways_orders_with_the_order_artifacts_both_ways(
    ibkr_env: dict[str, str], gateway: FakeGateway, materialize: Materialize
) -> None:
    """`trading-signals verify --broker` in an IBKR mode: read only, by order reference."""
    from io_managers.artifact_store import ArtifactStore
    from io_managers.reconcile import broker_orders_from, verify

    resources = wired(ibkr_env, gateway)
    assert materialize(resources).success  # placed, with its order artifact
    # NVDA the same day: an order at the gateway with no artifact (killed after sending it).
    placed, _ = place_once(
        _request(gateway, symbol="NVDA", signal=buy_signal("NVDA")),
        prior=None, open_venue=lambda: resources["broker"].venue(),
    )
    assert placed.placed
    sent = len(gateway.placed())
    store = ArtifactStore(resources["artifact_db"], resources["object_store"])

    def report() -> Any:
        with resources["broker"].venue() as venue:
            orders = broker_orders_from(venue.orders_between(LATEST, LATEST), "fake", "ibkr-paper")
        return verify(store, resources["spool"], LATEST, LATEST, broker=orders)

    found = report()
    assert found.broker_orders == 2 and not found.consistent
    assert [line.split(":")[0] for line in found.broker_without_artifact] == [f"NVDA {LATEST}"]
    assert found.artifact_without_broker == []
    assert len(gateway.placed()) == sent  # reading sent nothing
    # The other way: the gateway no longer knows the day's order, whose artifact says placed.
    gateway.orders = [o for o in gateway.orders if not o.order.orderRef.startswith("ts:TSLA")]
    found = report()
    (missing,) = found.artifact_without_broker
    assert f"{LATEST}|TSLA says placed" in missing and f"no order of TSLA {LATEST}" in missing
