"""Pre-trade risk gates: blocking checks on the order, evaluated before anything is sent."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from tests.ibkr.conftest import LATEST, Materialize, buy_signal, checks, kill_file, wired
from tests.ibkr.fake_ib import FakeGateway
from trading_assets.execution import gates
from trading_assets.execution.rules import OrderIntent, RiskLimits
from trading_assets.models import OrderSide
from trading_assets.partitions import partition_key_for

ALL_GATES = set(gates.GATES)


def _blocked(result: dg.ExecuteInProcessResult, gate: str) -> None:
    """The gate's check failed and no order went out. The kill switch also fails the run (so
    the alert fires) and skips the portfolio; a reached limit lets the portfolio be taken."""
    evaluations = checks(result)
    assert set(evaluations) == ALL_GATES
    assert evaluations[gate] is False
    assert all(passed for name, passed in evaluations.items() if name != gate)
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    if gate == gates.KILL_SWITCH:
        assert not result.success
        assert "order" in materialized and "portfolio" not in materialized
    else:
        assert result.success
        assert {"order", "portfolio"} <= materialized
    decision = result.output_for_node("order")
    assert not decision.placed and decision.reason.startswith("not traded:")


def test_the_kill_switch_file_stops_every_order(
    tmp_path: Path, ibkr_env: dict[str, str], gateway: FakeGateway, materialize: Materialize
) -> None:
    switch = kill_file(tmp_path)
    switch.parent.mkdir(parents=True, exist_ok=True)
    switch.touch()
    result = materialize(wired(ibkr_env, gateway))
    _blocked(result, gates.KILL_SWITCH)
    assert str(switch.resolve()) in result.output_for_node("order").reason
    assert gateway.placed() == [] and gateway.calls["reqAllOpenOrders"] == 0

    switch.unlink()  # lifted: the same partition now trades
    assert materialize(wired(ibkr_env, gateway)).success
    assert len(gateway.parents()) == 1


def test_the_kill_switch_setting_stops_the_paper_simulator_too(
    data_env: dict[str, str], gateway: FakeGateway, materialize: Materialize
) -> None:
    resources = wired({**data_env, "TRADING_KILL_SWITCH": "true"}, gateway)
    result = materialize(resources)
    _blocked(result, gates.KILL_SWITCH)
    assert "TRADING_KILL_SWITCH" in result.output_for_node("order").reason
    paper = resources["broker"].paper()
    assert paper.orders_placed_on(LATEST) == 0


def test_max_orders_per_day_blocks_the_next_symbol(
    ibkr_env: dict[str, str], gateway: FakeGateway, materialize: Materialize
) -> None:
    resources = wired({**ibkr_env, "MAX_ORDERS_PER_DAY": "1"}, gateway)
    assert materialize(resources, signal=buy_signal("NVDA"), symbol="NVDA").success
    result = materialize(resources)
    _blocked(result, gates.MAX_ORDERS_PER_DAY)
    assert len(gateway.parents()) == 1 and gateway.parents()[0].contract.symbol == "NVDA"


def test_max_position_blocks_a_buy_into_a_full_position(
    ibkr_env: dict[str, str], gateway: FakeGateway, materialize: Materialize
) -> None:
    gateway.positions["TSLA"] = (600.0, 90.0)  # 60,000 at the entry: over 50,000
    result = materialize(wired(ibkr_env, gateway))
    _blocked(result, gates.MAX_POSITION)
    assert gateway.placed() == []


def test_a_gate_never_fails_when_no_order_was_wanted(
    tmp_path: Path, ibkr_env: dict[str, str], gateway: FakeGateway, materialize: Materialize
) -> None:
    resources = wired({**ibkr_env, "TRADING_KILL_SWITCH": "true"}, gateway)
    result = materialize(resources, signal=buy_signal(action="HOLD", score=40))
    assert result.success and all(checks(result).values())
    assert result.output_for_node("order").reason == "HOLD signal: nothing to do"


def test_gate_rules() -> None:
    limits = RiskLimits(max_notional_per_order=5_000, max_position_notional=20_000,
                        max_orders_per_day=3)
    big = OrderIntent(OrderSide.BUY, 100, 100.0, 95.0, 110.0, "test")
    results = {g.name: g.passed for g in gates.evaluate(big, limits=limits, position_qty=150,
                                                         orders_today=3)}
    assert results == {gates.KILL_SWITCH: True, gates.PRICE_SANITY: True,
                       gates.MAX_ORDERS_PER_DAY: False, gates.MAX_POSITION: False,
                       gates.MAX_NOTIONAL: False}
    small_sell = OrderIntent(OrderSide.SELL, 40, 100.0, 105.0, 90.0, "test")
    assert all(g.passed for g in gates.evaluate(small_sell, limits=limits, position_qty=400,
                                                orders_today=0))  # reducing is always allowed


def test_kill_switch_reasons(tmp_path: Path) -> None:
    assert gates.kill_switch_reason(False, str(tmp_path / "absent")) is None
    assert "TRADING_KILL_SWITCH" in gates.kill_switch_reason(True, None)
    (tmp_path / "KILL").touch()
    assert "KILL" in gates.kill_switch_reason(False, str(tmp_path / "KILL"))


def test_gate_checks_are_blocking_and_partitioned() -> None:
    from trading_assets.execution.assets import order

    specs = {spec.name: spec for spec in order.check_specs}
    assert set(specs) == ALL_GATES
    assert all(spec.blocking for spec in specs.values())
    assert partition_key_for("TSLA", LATEST)  # the checks share the order's partitions
