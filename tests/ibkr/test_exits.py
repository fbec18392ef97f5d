"""Bracket exits at IBKR (through the fake gateway) never outlive the position they protect,
and the model's prices are checked against the market before anything is sent."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from resources import ibkr_broker
from resources.broker import BrokerResource
from resources.ibkr import IbkrError, IbkrPositionChangedError
from tests.ibkr.conftest import LATEST, Materialize, buy_signal, checks, wired
from tests.ibkr.fake_ib import FILLS_FIRST, FakeGateway, market_bars
from trading_assets.calendar import previous_session
from trading_assets.execution import gates
from trading_assets.execution.placement import OrderRequest, place_once
from trading_assets.execution.rules import RiskLimits
from trading_assets.models import MarketData, OrderDecision, OrderSide, TradingSignal

YESTERDAY = previous_session(LATEST)


def _place(
    broker: BrokerResource, gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch,
    signal: TradingSignal, day: dt.date, limits: RiskLimits | None = None,
) -> OrderDecision:
    """The order asset's decision path for ``day``, as if ``day`` were the latest session."""
    monkeypatch.setattr(ibkr_broker, "latest_completed_session", lambda _now: day)
    market = MarketData(symbol="TSLA", as_of=day, source="ibkr", source_detail="fake",
                        bars=market_bars("TSLA", day, 60, gateway.closes["TSLA"]))
    request = OrderRequest(symbol="TSLA", day=day, mode="ibkr-paper", signal=signal,
                           market=market, limits=limits or RiskLimits(), latest_session=day)
    decision, _ = place_once(request, prior=None, open_venue=broker.venue)
    return decision


def _long_100(broker: BrokerResource, gateway: FakeGateway, mp: pytest.MonkeyPatch,
              **broker_kw: Any) -> OrderDecision:
    """Yesterday's BUY bracket for 100 TSLA, its entry filled at 100."""
    bought = _place(broker, gateway, mp, buy_signal(day=YESTERDAY), YESTERDAY)
    assert bought.placed and bought.order.quantity == 100
    gateway.fill(gateway.parents()[-1], 100.0)
    assert gateway.position("TSLA") == 100 and len(gateway.working_exits("TSLA")) == 2
    return bought


def test_a_brackets_exits_are_one_cancels_other(
    ibkr_env: dict[str, str], gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = wired(ibkr_env, gateway)["broker"]
    bought = _long_100(broker, gateway, monkeypatch)
    exits = gateway.working_exits("TSLA")
    assert {(o.order.ocaGroup, o.order.ocaType) for o in exits} == {
        (f"{bought.order.order_ref}:exits", 1)}
    assert gateway.bar("TSLA", low=99.0, high=111.0)[0].execution.price == 110.0  # the target
    assert gateway.working_exits("TSLA") == [] and gateway.position("TSLA") == 0


def test_closing_a_long_cancels_the_earlier_brackets_exits(
    ibkr_env: dict[str, str], gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit's case: BUY 100, SELL 100, then a bar through the stop. Before the fix the
    bracket's GTC stop was still working and sold 100 more: the account ended short 100."""
    broker = wired(ibkr_env, gateway)["broker"]
    _long_100(broker, gateway, monkeypatch)
    sold = _place(broker, gateway, monkeypatch, buy_signal(action="SELL"), LATEST)
    assert sold.placed and (sold.order.side, sold.order.quantity) == (OrderSide.SELL, 100)
    gateway.fill(gateway.parents()[-1], 100.0)
    gateway.bar("TSLA", low=90.0, high=100.0)  # through the old stop at 95
    assert gateway.position("TSLA") == 0  # was -100
    assert gateway.working_exits("TSLA") == []  # cancelled before the SELL went out
    assert [o.status for o in gateway.placed()[:3]] == ["Filled", "Cancelled", "Cancelled"]


def test_reducing_a_long_shrinks_the_earlier_brackets_exits(
    ibkr_env: dict[str, str], gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = wired(ibkr_env, gateway)["broker"]
    _long_100(broker, gateway, monkeypatch)
    sold = _place(broker, gateway, monkeypatch, buy_signal(action="SELL"), LATEST,
                  limits=RiskLimits(sizing="fixed", fixed_shares=40))
    assert sold.order.quantity == 40
    assert [o.order.totalQuantity for o in gateway.working_exits("TSLA")] == [60, 60]
    gateway.fill(gateway.parents()[-1], 100.0)
    stop = gateway.bar("TSLA", low=90.0, high=100.0)
    assert gateway.position("TSLA") == 0  # was -40
    assert [(f.execution.shares, f.execution.price) for f in stop] == [(60, 95.0)]
    assert gateway.working_exits("TSLA") == []


def test_an_exit_that_fills_during_the_cancel_stops_the_order(
    ibkr_env: dict[str, str], gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = wired(ibkr_env, gateway)["broker"]
    _long_100(broker, gateway, monkeypatch)
    entries = len(gateway.parents())
    gateway.fail("cancelOrder", FILLS_FIRST)  # the market reaches the exit first
    with pytest.raises(IbkrPositionChangedError, match="was not sent"):
        _place(broker, gateway, monkeypatch, buy_signal(action="SELL"), LATEST)
    assert issubclass(IbkrPositionChangedError, ConnectionError)  # the step is retried
    assert len(gateway.parents()) == entries and gateway.position("TSLA") == 0
    retry = _place(broker, gateway, monkeypatch, buy_signal(action="SELL"), LATEST)
    assert not retry.placed and "no long position to sell" in retry.reason
    assert gateway.position("TSLA") == 0


def test_exits_of_another_client_stop_the_order_with_the_fix(
    ibkr_env: dict[str, str], gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = wired(ibkr_env, gateway, client_id=7)["broker"]
    _long_100(other, gateway, monkeypatch)
    broker = wired(ibkr_env, gateway)["broker"]
    with pytest.raises(IbkrError, match="IBKR_CLIENT_ID=7") as err:
        _place(broker, gateway, monkeypatch, buy_signal(action="SELL"), LATEST)
    assert "nothing was sent" in str(err.value)
    assert len(gateway.parents()) == 1 and len(gateway.working_exits("TSLA")) == 2


# -- the model's prices against the market, through the order asset ----------------------------


def _refused(result: Any, starts: str) -> str:
    assert result.success
    assert checks(result)[gates.PRICE_SANITY] is False
    assert all(passed for name, passed in checks(result).items() if name != gates.PRICE_SANITY)
    decision = result.output_for_node("order")
    assert not decision.placed and decision.reason.startswith(starts), decision.reason
    return decision.reason


def test_an_entry_far_from_the_market_is_not_sent(
    ibkr_env: dict[str, str], gateway: FakeGateway, materialize: Materialize
) -> None:
    gateway.closes["TSLA"] = 120.0  # the model's entry at 100 is 16.7% away
    reason = _refused(materialize(wired(ibkr_env, gateway)),
                      "not traded: entry 100.00 is 16.7% from the latest close 120.00")
    assert "MAX_ENTRY_DEVIATION_PCT=5" in reason
    assert gateway.calls["placeOrder"] == 0


def test_a_stop_the_market_already_passed_is_not_sent(
    ibkr_env: dict[str, str], gateway: FakeGateway, materialize: Materialize
) -> None:
    gateway.closes["TSLA"] = 95.0  # the BUY's stop is at 95
    resources = wired({**ibkr_env, "MAX_ENTRY_DEVIATION_PCT": "10"}, gateway)
    _refused(materialize(resources),
             "not traded: the BUY stop loss 95.00 is at or above the latest close 95.00")
    assert gateway.calls["placeOrder"] == 0


def test_materializing_order_alone_still_enforces_min_risk_reward(
    ibkr_env: dict[str, str], gateway: FakeGateway, materialize: Materialize
) -> None:
    # Only the assets run, not the trading_signal_levels check ("Materialize selected").
    thin = buy_signal().model_copy(update={"take_profit": 104.0})  # reward 4 for a risk of 5
    _refused(materialize(wired(ibkr_env, gateway), signal=thin),
             "not traded: risk/reward 0.80 below MIN_RISK_REWARD 1.5")
    assert gateway.calls["placeOrder"] == 0
