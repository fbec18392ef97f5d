"""The IBKR resource against the fake gateway: connecting, qualifying, bars, faults."""

from __future__ import annotations

import datetime as dt

import pytest

from resources.ibkr import (
    IbkrPacingError,
    IbkrTimeoutError,
    IbkrUnreachableError,
    UnknownSymbolError,
    duration_for,
    ref_matches,
)
from tests.ibkr.conftest import LATEST
from tests.ibkr.fake_ib import DROP, DROP_AFTER, FakeGateway, fake_ibkr, pacing_error

DAY = dt.date(2025, 6, 2)


def test_an_unreachable_gateway_names_host_and_port(gateway: FakeGateway) -> None:
    gateway.up = False
    ibkr = fake_ibkr(gateway, host="gw.internal", port=4002)
    with pytest.raises(IbkrUnreachableError) as err, ibkr.session():
        pass
    assert "gw.internal:4002" in str(err.value) and "IBKR_HOST / IBKR_PORT" in str(err.value)
    assert isinstance(err.value, ConnectionError)  # the assets' RetryPolicy retries it


def test_an_unknown_symbol_is_a_clear_error_not_an_empty_chart(gateway: FakeGateway) -> None:
    with fake_ibkr(gateway).session() as session, pytest.raises(UnknownSymbolError) as err:
        session.daily_bars("ZZZZ", DAY, 60)
    assert "'ZZZZ'" in str(err.value) and "STOCK_SYMBOLS" in str(err.value)
    assert gateway.calls["reqHistoricalData"] == 0  # qualified first, never asked for bars


def test_daily_bars_end_at_the_day_and_never_after(gateway: FakeGateway) -> None:
    with fake_ibkr(gateway).session() as session:
        bars = session.daily_bars("TSLA", DAY, 60)
    assert len(bars) == 60 and bars.index.max().date() == DAY
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]
    assert str(bars["volume"].dtype) == "int64"


def test_a_disconnect_mid_request_reconnects_once(gateway: FakeGateway) -> None:
    gateway.fail("reqHistoricalData", DROP)
    with fake_ibkr(gateway).session() as session:
        bars = session.daily_bars("TSLA", DAY, 60)
    assert len(bars) == 60
    assert gateway.connections == 2 and gateway.calls["reqHistoricalData"] == 2


def test_a_second_disconnect_in_one_session_is_left_to_the_retry_policy(
    gateway: FakeGateway,
) -> None:
    gateway.fail("reqHistoricalData", DROP)
    gateway.fail("reqHistoricalData", DROP_AFTER)
    with fake_ibkr(gateway).session() as session, pytest.raises(IbkrUnreachableError) as err:
        session.daily_bars("TSLA", DAY, 60)
    assert "dropped again after one reconnect" in str(err.value)
    assert gateway.connections == 2


def test_pacing_violations_wait_and_retry_a_bounded_number_of_times(
    gateway: FakeGateway,
) -> None:
    gateway.fail("reqHistoricalData", pacing_error(), times=2)
    with fake_ibkr(gateway, pacing_retries=3).session() as session:
        assert len(session.daily_bars("TSLA", DAY, 60)) == 60
    assert gateway.calls["sleep"] == 2

    gateway.fail("reqHistoricalData", pacing_error(), times=4)
    with fake_ibkr(gateway, pacing_retries=3).session() as session, pytest.raises(
        IbkrPacingError
    ):
        session.daily_bars("TSLA", DAY, 60)
    assert gateway.calls["sleep"] == 2 + 3


def test_a_request_timeout_names_the_setting(gateway: FakeGateway) -> None:
    gateway.fail("reqHistoricalData", TimeoutError())
    with fake_ibkr(gateway).session() as session, pytest.raises(IbkrTimeoutError) as err:
        session.daily_bars("TSLA", LATEST, 60)
    assert "IBKR_REQUEST_TIMEOUT" in str(err.value)


def test_orders_and_their_ref_survive_a_reconnect(gateway: FakeGateway) -> None:
    ibkr = fake_ibkr(gateway)
    with ibkr.session() as session:
        contract = session.stock("TSLA")
        legs = session.bracket("BUY", 10, 100.0, 110.0, 95.0, oca_group="g1", oca_type=1)
        for leg in legs:
            leg.orderRef = "ts:TSLA:2025-06-02:BUY"
        session.place(contract, legs)
    with ibkr.session() as session:  # a new connection, maybe a new process
        found = session.trades_with_ref("ts:TSLA:2025-06-02")
    assert len(found) == 3 and {t.order.orderType for t in found} == {"LMT", "STP"}
    # The two exits are one-cancels-other; the entry is in no group.
    assert sorted((t.order.ocaGroup, t.order.ocaType) for t in found) == [("", 0), ("g1", 1),
                                                                          ("g1", 1)]


def test_durations_and_reference_matching() -> None:
    assert duration_for(60) == "98 D"
    assert duration_for(520) == "3 Y"
    assert ref_matches("ts:TSLA:2025-06-02:BUY", "ts:TSLA:2025-06-02")
    assert ref_matches("ts:TSLA:2025-06-02", "ts:TSLA:2025-06-02")
    assert not ref_matches("ts:TSLA:2025-06-03:BUY", "ts:TSLA:2025-06-02")
    assert not ref_matches("ts:TSLAX:2025-06-02", "ts:TSLA")
    assert not ref_matches("", "ts:TSLA:2025-06-02")
