import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from trading_assets.execution.costs import CostModel
from trading_assets.execution.exits import ExitChange, WorkingExits, exit_changes, exit_room
from trading_assets.execution.paper_broker import PaperBroker
from trading_assets.execution.paper_broker import fills as paper_fills
from trading_assets.execution.paper_broker import orders as paper_orders
from trading_assets.execution.rules import (
    NoOrder,
    OrderIntent,
    RiskLimits,
    decide,
    level_problem,
    order_ref,
    price_problem,
)
from trading_assets.models import MarketData, OrderSide, TradingSignal

DAY = dt.date(2025, 6, 2)


def _signal(action: str = "BUY", score: float = 70, **kw: object) -> TradingSignal:
    prices = {"BUY": (100, 95, 110), "SELL": (100, 105, 90)}.get(action, (None, None, None))
    level = "HIGH" if score >= 80 else "MEDIUM" if score >= 50 else "LOW"
    fields = dict(
        symbol="TSLA", as_of=DAY, action=action, confidence_score=score, confidence_level=level,
        reasoning="r", key_factors=["k"], trend="NEUTRAL", provider="offline", model_name="m",
        entry_price=prices[0], stop_loss=prices[1], take_profit=prices[2],
        position_size_pct=10 if action != "HOLD" else 0,
        actionable=action != "HOLD" and score >= 50,
    )
    fields.update(kw)
    return TradingSignal(**fields)


def test_hold_and_low_confidence_give_reasons() -> None:
    assert decide(_signal("HOLD", 40), limits=RiskLimits(), equity=1e5, position_qty=0) == NoOrder(
        "HOLD signal: nothing to do")
    low = decide(_signal("BUY", 40), limits=RiskLimits(), equity=1e5, position_qty=0)
    assert isinstance(low, NoOrder) and "below the threshold 50" in low.reason


def test_percent_sizing_and_caps() -> None:
    intent = decide(_signal(), limits=RiskLimits(), equity=100_000, position_qty=0)
    assert isinstance(intent, OrderIntent) and intent.quantity == 100  # 10% of 100k at 100
    capped = decide(_signal(), limits=RiskLimits(max_notional_per_order=5_000), equity=100_000,
                    position_qty=0)
    assert isinstance(capped, OrderIntent) and capped.quantity == 50
    assert "capped by max notional per order" in capped.sizing_note
    full = decide(_signal(), limits=RiskLimits(max_position_notional=50_000), equity=100_000,
                  position_qty=500)
    assert isinstance(full, NoOrder) and "risk gate" in full.reason


def test_fixed_sizing() -> None:
    intent = decide(_signal(), limits=RiskLimits(sizing="fixed", fixed_shares=7), equity=1,
                    position_qty=0)
    assert isinstance(intent, OrderIntent) and intent.quantity == 7


def test_sell_without_position_is_refused_unless_shorting() -> None:
    refused = decide(_signal("SELL"), limits=RiskLimits(), equity=1e5, position_qty=0)
    assert isinstance(refused, NoOrder) and "short selling is off" in refused.reason
    closing = decide(_signal("SELL"), limits=RiskLimits(), equity=1e5, position_qty=30)
    assert isinstance(closing, OrderIntent) and closing.quantity == 30
    assert closing.side is OrderSide.SELL


def _bars(rows: list[tuple[str, float, float, float, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["date", "open", "high", "low", "close"])
    frame["volume"] = 1_000
    return frame.assign(date=pd.to_datetime(frame["date"])).set_index("date")


INTENT = OrderIntent(OrderSide.BUY, 10, 100.0, 95.0, 110.0, "test")
BUY_100 = OrderIntent(OrderSide.BUY, 100, 100.0, 95.0, 110.0, "test")
DAY2, DAY3 = dt.date(2025, 6, 3), dt.date(2025, 6, 4)
# The next session's bar: it trades through the 100 limit, far from the 95 stop.
THROUGH_100 = ("2025-06-03", 101, 102, 99, 100)


def _broker(tmp_path: Path) -> PaperBroker:
    return PaperBroker(f"sqlite:///{tmp_path}/paper.db", 100_000)


# No commission, no slippage: the tests of how a bar fills read the bare prices.
FREE = CostModel(commission_per_share=0, commission_min=0, slippage_bps=0)


def _free(tmp_path: Path, cash: float = 10_000) -> PaperBroker:
    return PaperBroker(f"sqlite:///{tmp_path}/paper.db", cash, costs=FREE)


def test_an_order_never_fills_at_its_signals_close_and_is_placed_once(tmp_path: Path) -> None:
    broker = _free(tmp_path)
    ref = order_ref("TSLA", "2025-06-02")
    # The close 99.5 is below the 100 limit: before, this filled at once, at the very close the
    # signal was computed from.
    ticket, created = broker.submit(ref, "TSLA", DAY, INTENT, close=99.5)
    assert created and ticket.status == "working" and broker.fills_for(ref) == []
    again, created_again = broker.submit(ref, "TSLA", DAY, INTENT, close=99.5)
    assert not created_again and again.order_ref == ref
    other_ref, created_other = broker.submit("other-ref", "TSLA", DAY, INTENT, close=99.5)
    assert not created_other and other_ref.order_ref == ref  # one order per symbol and day
    # The signal's own bar, open already through the limit, is never worked...
    bars = _bars([("2025-06-02", 98, 101, 97, 99.5), ("2025-06-03", 101, 102, 99, 101)])
    assert broker.process_bars("TSLA", bars, DAY) == 0
    assert broker.fills_for(ref) == [] and broker.snapshot(DAY, "TSLA").cash == 10_000
    # ...the next session's is, once.
    assert broker.process_bars("TSLA", bars, dt.date(2025, 6, 3)) == 1
    assert broker.process_bars("TSLA", bars, dt.date(2025, 6, 3)) == 0
    assert [(f.leg, f.price) for f in broker.fills_for(ref)] == [("entry", 100.0)]
    snap = broker.snapshot(dt.date(2025, 6, 3), "TSLA")
    assert snap.cash == pytest.approx(10_000 - 1_000)
    assert snap.positions[0].quantity == 10 and snap.total_value == pytest.approx(10_000)


def test_the_order_assets_next_run_works_the_order_on_its_session(tmp_path: Path) -> None:
    """The order asset's sequence: prepare with the day's bars, submit; the next partition's
    prepare, with the next session's bar, fills it."""
    broker = _free(tmp_path)
    ref = order_ref("TSLA", DAY, "BUY")
    history = [("2025-05-30", 100, 101, 99, 100), ("2025-06-02", 98, 101, 97, 99.5)]
    broker.prepare(MarketData(symbol="TSLA", as_of=DAY, source="csv", source_detail="test",
                              bars=_bars(history)))
    broker.submit(ref, "TSLA", DAY, INTENT, close=99.5)
    assert broker.snapshot(DAY, "TSLA").fills_today == []
    next_day = _bars([*history, ("2025-06-03", 99.8, 101, 99, 100.5)])
    broker.prepare(MarketData(symbol="TSLA", as_of=DAY2, source="csv", source_detail="test",
                              bars=next_day))
    snap = broker.snapshot(DAY2, "TSLA")
    assert [(f.order_ref, f.price) for f in snap.fills_today] == [(ref, 99.8)]
    assert snap.positions[0].market_price == 100.5  # marked to the session's close


def test_a_next_session_that_opens_through_the_limit_fills_at_the_open(tmp_path: Path) -> None:
    broker = _free(tmp_path, 100_000)
    buy_ref = order_ref("TSLA", DAY, "BUY")
    broker.submit(buy_ref, "TSLA", DAY, BUY_100, close=101.0)
    broker.process_bars("TSLA", _bars([("2025-06-03", 98, 99, 97, 98.5)]), DAY2)
    assert [(f.leg, f.price) for f in broker.fills_for(buy_ref)] == [("entry", 98.0)]
    # A SELL limit the next session gaps above fills at that open too.
    sell = OrderIntent(OrderSide.SELL, 100, 100.0, 105.0, 90.0, "test")
    sell_ref = order_ref("TSLA", DAY2, "SELL")
    broker.submit(sell_ref, "TSLA", DAY2, sell, close=98.5)
    broker.process_bars("TSLA", _bars([("2025-06-04", 103, 104, 102, 103)]), DAY3)
    assert [(f.leg, f.side, f.price) for f in broker.fills_for(sell_ref)] == [
        ("entry", OrderSide.SELL, 103.0)]
    assert broker.position("TSLA", DAY3) == 0


def test_a_session_that_trades_through_the_limit_fills_at_the_limit(tmp_path: Path) -> None:
    broker = _free(tmp_path)
    ref = order_ref("TSLA", "2025-06-02")
    broker.submit(ref, "TSLA", DAY, INTENT, close=102.0)
    broker.process_bars("TSLA", _bars([("2025-06-03", 101, 103, 99.5, 102)]), dt.date(2025, 6, 3))
    fill = broker.fills_for(ref)[0]
    assert fill.price == 100.0 and fill.filled_at.date() == dt.date(2025, 6, 3)
    assert broker.find_order(ref).status == "filled"


def test_a_session_that_only_touches_the_limit_does_not_fill(tmp_path: Path) -> None:
    broker = _free(tmp_path)
    ref = order_ref("TSLA", "2025-06-02")
    broker.submit(ref, "TSLA", DAY, INTENT, close=102.0)
    # The low is the limit, not below it: others were ahead in the queue.
    bars = _bars([("2025-06-03", 101, 103, 100.0, 102), ("2025-06-04", 99, 100, 95, 96)])
    broker.process_bars("TSLA", bars, dt.date(2025, 6, 3))
    assert broker.fills_for(ref) == [] and broker.find_order(ref).status == "expired"
    broker.process_bars("TSLA", bars, dt.date(2025, 6, 4))
    assert broker.fills_for(ref) == []


def test_bracket_exits_at_take_profit_on_a_later_bar(tmp_path: Path) -> None:
    broker = _free(tmp_path)
    ref = order_ref("TSLA", "2025-06-02")
    broker.submit(ref, "TSLA", DAY, INTENT, close=100.0)
    bars = _bars([("2025-06-02", 99, 101, 98, 100), ("2025-06-03", 101, 104, 99.5, 103),
                  ("2025-06-04", 104, 110, 103, 109), ("2025-06-05", 109, 112, 108, 111)])
    broker.process_bars("TSLA", bars, dt.date(2025, 6, 3))
    assert broker.find_order(ref).status == "filled"
    broker.process_bars("TSLA", bars, dt.date(2025, 6, 4))  # touches the 110 target: no fill
    assert broker.find_order(ref).status == "filled"
    broker.process_bars("TSLA", bars, dt.date(2025, 6, 5))  # trades through it
    assert broker.find_order(ref).status == "closed"
    legs = [(f.leg, f.side, f.price) for f in broker.fills_for(ref)]
    assert legs == [("entry", OrderSide.BUY, 100.0), ("take_profit", OrderSide.SELL, 110.0)]
    snap = broker.snapshot(dt.date(2025, 6, 5), "TSLA")
    assert snap.positions == [] and snap.realized_pnl == pytest.approx(100.0)
    assert [f.leg for f in snap.fills_today] == ["take_profit"]
    broker.process_bars("TSLA", bars, dt.date(2025, 6, 5))  # replay: nothing more
    assert len(broker.fills_for(ref)) == 2


def test_a_bar_touching_stop_and_target_exits_at_the_stop(tmp_path: Path) -> None:
    broker = _free(tmp_path)
    ref = order_ref("TSLA", "2025-06-02")
    broker.submit(ref, "TSLA", DAY, INTENT, close=100.0)
    bars = _bars([("2025-06-03", 101, 102, 99, 100), ("2025-06-04", 100, 111, 94, 100)])
    broker.process_bars("TSLA", bars, dt.date(2025, 6, 4))
    assert [(f.leg, f.price) for f in broker.fills_for(ref)] == [
        ("entry", 100.0), ("stop_loss", 95.0)]
    assert broker.snapshot(dt.date(2025, 6, 4), "TSLA").realized_pnl == pytest.approx(-50.0)


def test_on_the_entrys_bar_only_the_stop_can_trigger(tmp_path: Path) -> None:
    broker = _free(tmp_path)
    ref = order_ref("TSLA", "2025-06-02")
    broker.submit(ref, "TSLA", DAY, INTENT, close=100.0)
    # The session fills the entry and reaches the 110 target: nothing says in that order.
    broker.process_bars("TSLA", _bars([("2025-06-03", 101, 112, 99, 111)]), DAY2)
    assert [f.leg for f in broker.fills_for(ref)] == ["entry"]
    assert broker.find_order(ref).status == "filled"
    # An entry at an open already below the stop is stopped out at once, at the entry's price.
    other = order_ref("NVDA", "2025-06-02")
    broker.submit(other, "NVDA", DAY, INTENT, close=100.0)
    broker.process_bars("NVDA", _bars([("2025-06-03", 94, 96, 93, 95)]), DAY2)
    assert [(f.leg, f.price) for f in broker.fills_for(other)] == [
        ("entry", 94.0), ("stop_loss", 94.0)]
    assert broker.find_order(other).status == "closed" and broker.position("NVDA", DAY2) == 0


def test_a_stop_the_open_gapped_past_fills_at_the_open(tmp_path: Path) -> None:
    broker = _free(tmp_path)
    ref = order_ref("TSLA", "2025-06-02")
    broker.submit(ref, "TSLA", DAY, INTENT, close=100.0)
    bars = _bars([("2025-06-03", 101, 102, 99, 100), ("2025-06-04", 92, 93, 90, 91)])
    broker.process_bars("TSLA", bars, DAY3)
    assert broker.fills_for(ref)[-1].leg == "stop_loss" and broker.fills_for(ref)[-1].price == 92


def test_an_entry_that_does_not_trade_in_the_next_session_expires(tmp_path: Path) -> None:
    broker = _free(tmp_path)
    ref = order_ref("TSLA", "2025-06-02")
    broker.submit(ref, "TSLA", DAY, INTENT, close=102.0)
    # 2025-06-03 never trades down to the 100 limit: the DAY order ends there...
    bars = _bars([("2025-06-03", 102, 104, 101, 103), ("2025-06-04", 99, 100, 95, 96)])
    broker.process_bars("TSLA", bars, dt.date(2025, 6, 3))
    assert broker.find_order(ref).status == "expired"
    # ...so a later dip through the limit fills nothing.
    broker.process_bars("TSLA", bars, dt.date(2025, 6, 4))
    assert broker.fills_for(ref) == [] and broker.position("TSLA", dt.date(2025, 6, 4)) == 0


def test_snapshot_marks_positions_to_the_latest_close(tmp_path: Path) -> None:
    broker = _free(tmp_path)
    broker.submit(order_ref("TSLA", "2025-06-02"), "TSLA", DAY, INTENT, close=100.0)
    broker.process_bars("TSLA", _bars([("2025-06-03", 101, 102, 99, 100)]), DAY2)
    broker.record_mark("TSLA", DAY3, 104.0)
    snap = broker.snapshot(DAY3, "TSLA")
    assert snap.unrealized_pnl == pytest.approx(40.0)
    assert snap.total_value == pytest.approx(10_040.0)
    assert broker.snapshot(DAY2, "TSLA").unrealized_pnl == 0  # as of the fill day: cost basis


# -- fees and slippage ---------------------------------------------------------------------------


def test_every_fill_records_commission_and_slippage_and_cash_pays_them(tmp_path: Path) -> None:
    broker = _broker(tmp_path)  # the default costs: 0.005 USD/share, 1.00 minimum, 5 bp
    ref = order_ref("TSLA", DAY, "BUY")
    broker.submit(ref, "TSLA", DAY, BUY_100, close=101.0)
    # A gap to 99: the buy pays 5 bp over the open (still under its 100 limit).
    broker.process_bars("TSLA", _bars([("2025-06-03", 99, 99.5, 98, 99)]), DAY2)
    entry = broker.fills_for(ref)[0]
    assert entry.price == pytest.approx(99.0495)
    assert entry.slippage == pytest.approx(4.95) and entry.commission == pytest.approx(1.0)
    snap = broker.snapshot(DAY2, "TSLA")
    assert snap.cash == pytest.approx(100_000 - 9_904.95 - 1.0)
    assert snap.fills_today[0].commission == pytest.approx(1.0)
    assert snap.positions[0].average_cost == pytest.approx(99.0595)  # the commission included
    # The stop is a market order: it slips in full below the 95 stop.
    broker.process_bars("TSLA", _bars([("2025-06-04", 96, 97, 94, 94.5)]), DAY3)
    stop = broker.fills_for(ref)[1]
    assert (stop.leg, stop.price) == ("stop_loss", pytest.approx(94.9525))
    assert stop.slippage == pytest.approx(4.75) and stop.commission == pytest.approx(1.0)
    snap = broker.snapshot(DAY3, "TSLA")
    # Realized P&L is net of both commissions; cash is what is left after all of it.
    assert snap.realized_pnl == pytest.approx(100 * (94.9525 - 99.0495) - 2.0)
    assert snap.cash == pytest.approx(100_000 + snap.realized_pnl)
    assert snap.total_value == snap.cash and snap.positions == []


def test_limit_legs_never_slip_past_their_limit_and_the_commission_follows_the_settings(
    tmp_path: Path,
) -> None:
    costs = CostModel(commission_per_share=0.01, commission_min=2.0, slippage_bps=10)
    broker = PaperBroker(f"sqlite:///{tmp_path}/paper.db", 100_000, costs=costs)
    ref = order_ref("TSLA", DAY, "BUY")
    broker.submit(ref, "TSLA", DAY, BUY_100, close=101.0)
    bars = _bars([("2025-06-03", 101, 102, 99, 100), ("2025-06-04", 109, 111, 108, 110)])
    broker.process_bars("TSLA", bars, DAY3)
    entry, target = broker.fills_for(ref)
    assert (entry.price, entry.slippage) == (100.0, 0.0)  # at its limit: no worse
    assert (target.leg, target.price, target.slippage) == ("take_profit", 110.0, 0.0)
    assert entry.commission == target.commission == pytest.approx(2.0)  # the minimum
    few = PaperBroker(f"sqlite:///{tmp_path}/other.db", 100_000, costs=costs)
    assert few.costs.commission(1_000) == pytest.approx(10.0)


# -- pre-trade sanity of the model's prices -----------------------------------------------------


def test_max_position_pct_caps_the_signals_suggested_size() -> None:
    greedy = _signal(position_size_pct=40)  # the model asks for 40% of equity
    intent = decide(greedy, limits=RiskLimits(), equity=100_000, position_qty=0)
    assert isinstance(intent, OrderIntent) and intent.quantity == 100  # 10% of 100k at 100
    assert "the signal's 40% capped by MAX_POSITION_PCT=10" in intent.sizing_note
    wider = decide(greedy, limits=RiskLimits(max_position_pct=20), equity=100_000, position_qty=0)
    assert isinstance(wider, OrderIntent) and wider.quantity == 200
    modest = decide(_signal(position_size_pct=5), limits=RiskLimits(), equity=100_000,
                    position_qty=0)
    assert isinstance(modest, OrderIntent) and modest.quantity == 50
    assert "capped" not in modest.sizing_note


def test_risk_reward_below_the_minimum_is_not_traded() -> None:
    thin = _signal(take_profit=106)  # reward 6 for a risk of 5
    refused = decide(thin, limits=RiskLimits(), equity=1e5, position_qty=0)
    assert isinstance(refused, NoOrder)
    assert refused.reason.startswith("not traded: risk/reward 1.20 below MIN_RISK_REWARD 1.5")
    allowed = decide(thin, limits=RiskLimits(min_risk_reward=1.2), equity=1e5, position_qty=0)
    assert isinstance(allowed, OrderIntent)


def test_levels_on_the_wrong_sides_are_refused_even_unvalidated() -> None:
    # model_construct skips the model's validation, as an old or hand-made artifact could.
    inverted = _signal().model_construct(**{**_signal().model_dump(), "stop_loss": 101.0})
    problem = level_problem(inverted, 1.5)
    assert problem and "a BUY needs stop loss < entry < take profit" in problem
    assert level_problem(_signal(), 1.5) is None and level_problem(_signal("HOLD", 40), 9) is None


def test_an_entry_far_from_the_latest_close_is_refused() -> None:
    limits = RiskLimits()  # MAX_ENTRY_DEVIATION_PCT 5
    far = price_problem(_signal(), latest_close=110.0, limits=limits)
    assert far and far.startswith("entry 100.00 is 9.1% from the latest close 110.00")
    assert "MAX_ENTRY_DEVIATION_PCT=5" in far and "re-run the analysis" in far
    assert price_problem(_signal(), latest_close=104.0, limits=limits) is None
    assert price_problem(_signal(), latest_close=110.0,
                         limits=RiskLimits(max_entry_deviation_pct=10)) is None
    assert price_problem(_signal("SELL"), latest_close=94.0, limits=limits)  # 6.4% away


def test_a_stop_already_past_the_latest_close_is_refused() -> None:
    wide = RiskLimits(max_entry_deviation_pct=10)
    buy = price_problem(_signal(), latest_close=95.0, limits=wide)  # BUY stop 95
    assert buy and buy.startswith("the BUY stop loss 95.00 is at or above the latest close 95.00")
    assert price_problem(_signal(), latest_close=95.5, limits=wide) is None
    sell = price_problem(_signal("SELL"), latest_close=105.0, limits=wide)  # SELL stop 105
    assert sell and sell.startswith("the SELL stop loss 105.00 is at or below the latest close")
    assert price_problem(_signal("SELL"), latest_close=104.5, limits=wide) is None
    assert price_problem(_signal("HOLD", 40), latest_close=1.0, limits=wide) is None


# -- bracket exits never outlive the position ----------------------------------------------------


def test_exit_room_and_changes() -> None:
    buy, sell = OrderSide.BUY, OrderSide.SELL
    assert exit_room(100, sell, 100) == {sell: 0, buy: 0}  # closing: no exit may trade
    assert exit_room(100, sell, 40) == {sell: 60, buy: 0}  # reducing: what is left
    assert exit_room(100, buy, 50) == {sell: 100, buy: 0}  # adding: the old exits keep theirs
    assert exit_room(0, buy, 50) == {sell: 0, buy: 0}  # flat: stale exits must go
    assert exit_room(-30, sell, 10) == {sell: 0, buy: 30}
    working = [WorkingExits("a", sell, 50), WorkingExits("b", sell, 50)]
    assert exit_changes(working, {sell: 100}) == []
    assert exit_changes(working, {sell: 60}) == [ExitChange("a", 10)]  # oldest shrinks first
    assert exit_changes(working, {sell: 40}) == [ExitChange("a", 0), ExitChange("b", 40)]
    assert [c.cancels for c in exit_changes(working, {sell: 0})] == [True, True]


def _bought_100(tmp_path: Path) -> tuple[PaperBroker, str]:
    """A long 100 at 100 from DAY's bracket, filled on the next session (DAY2)."""
    broker = _free(tmp_path, 100_000)
    buy_ref = order_ref("TSLA", DAY, "BUY")
    broker.submit(buy_ref, "TSLA", DAY, BUY_100, close=100.0)
    broker.process_bars("TSLA", _bars([THROUGH_100]), DAY2)
    assert broker.position("TSLA", DAY2) == 100
    return broker, buy_ref


def test_closing_a_long_cancels_the_brackets_exits(tmp_path: Path) -> None:
    """The audit's case: BUY 100, SELL 100, then a bar through the stop. Before the fix the
    stop still sold 100 and left the account short 100."""
    broker, buy_ref = _bought_100(tmp_path)
    sell = OrderIntent(OrderSide.SELL, 100, 100.0, 105.0, 90.0, "test")
    ticket, _ = broker.submit(order_ref("TSLA", DAY2, "SELL"), "TSLA", DAY2, sell, close=100.0)
    assert ticket.status == "working"  # it fills on the next session, not at this close
    assert broker.find_order(buy_ref).status == "exits_cancelled"
    # The next session opens at the SELL's limit, then falls through the old stop.
    broker.process_bars("TSLA", _bars([("2025-06-04", 100.5, 101, 90, 91)]), DAY3)
    assert broker.position("TSLA", DAY3) == 0
    assert [f.leg for f in broker.fills_for(buy_ref)] == ["entry"]


def test_a_closing_order_still_working_keeps_the_old_exits_from_firing(tmp_path: Path) -> None:
    broker, buy_ref = _bought_100(tmp_path)
    sell = OrderIntent(OrderSide.SELL, 100, 103.0, 108.0, 90.0, "test")
    sell_ref = order_ref("TSLA", DAY2, "SELL")
    ticket, _ = broker.submit(sell_ref, "TSLA", DAY2, sell, close=100.0)
    assert ticket.status == "working"
    # One bar reaches the old stop (94 < 95) and the new limit (104 > 103): only the SELL trades.
    broker.process_bars("TSLA", _bars([("2025-06-04", 100, 104, 94, 99)]), DAY3)
    assert broker.position("TSLA", DAY3) == 0
    assert [f.leg for f in broker.fills_for(buy_ref)] == ["entry"]
    assert [(f.leg, f.quantity, f.price) for f in broker.fills_for(sell_ref)] == [
        ("entry", 100, 103.0)]


def test_reducing_a_long_shrinks_the_brackets_exits(tmp_path: Path) -> None:
    broker, buy_ref = _bought_100(tmp_path)
    sell = OrderIntent(OrderSide.SELL, 40, 100.0, 105.0, 90.0, "test")
    broker.submit(order_ref("TSLA", DAY2, "SELL"), "TSLA", DAY2, sell, close=100.0)
    assert broker.find_order(buy_ref).status == "filled"  # its exits now cover 60
    # The SELL fills at the open (100), the old stop sells the 60 left.
    broker.process_bars("TSLA", _bars([("2025-06-04", 100, 100.5, 90, 91)]), DAY3)
    assert [(f.leg, f.quantity) for f in broker.fills_for(buy_ref)] == [
        ("entry", 100), ("stop_loss", 60)]
    assert broker.position("TSLA", DAY3) == 0
    assert broker.snapshot(DAY3, "TSLA").realized_pnl == pytest.approx(-300.0)  # 60 x -5


def test_an_exit_never_trades_more_than_is_held(tmp_path: Path) -> None:
    """Belt and braces: even if the shares left by a path that adjusted no exits (here a fill
    written straight into the book), the stop finds nothing to sell and is cancelled."""
    broker, buy_ref = _bought_100(tmp_path)
    with broker.engine.begin() as conn:
        conn.execute(sa.insert(paper_fills).values(
            order_ref="manual", leg="entry", symbol="TSLA", side="SELL", quantity=100.0,
            price=100.0, fill_date=DAY2, filled_at=dt.datetime(2025, 6, 3, 20, tzinfo=dt.UTC)))
    broker.process_bars("TSLA", _bars([("2025-06-04", 96, 97, 90, 91)]), DAY3)
    assert broker.position("TSLA", DAY3) == 0
    assert broker.find_order(buy_ref).status == "exits_cancelled"


# -- databases of older versions -----------------------------------------------------------------

ADDED = {"paper_orders": {"exit_quantity"}, "paper_fills": {"commission", "slippage"}}


def _old_database(url: str) -> None:
    """The simulator's tables as the first version made them, one fill of that time in them."""
    old = sa.MetaData()
    for table in (paper_orders, paper_fills):
        sa.Table(table.name, old, *[
            sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in table.columns if c.name not in ADDED[table.name]])
    engine = sa.create_engine(url)
    old.create_all(engine)
    with engine.begin() as conn:
        conn.execute(old.tables["paper_fills"].insert().values(
            order_ref="ts:TSLA:2025-05-30:BUY", leg="entry", symbol="TSLA", side="BUY",
            quantity=10.0, price=100.0, fill_date=dt.date(2025, 5, 30),
            filled_at=dt.datetime(2025, 5, 30, 20, tzinfo=dt.UTC)))
    engine.dispose()


def test_an_older_simulator_database_gains_the_new_columns(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    _old_database(url)
    broker = PaperBroker(url, 10_000)
    for table, columns in ADDED.items():
        assert columns <= {c["name"] for c in sa.inspect(broker.engine).get_columns(table)}
    (old_fill,) = broker.fills_for("ts:TSLA:2025-05-30:BUY")
    assert (old_fill.commission, old_fill.slippage) == (0.0, 0.0)  # none was recorded then
    broker.submit(order_ref("TSLA", DAY, "BUY"), "TSLA", DAY, INTENT, close=100.0)
    broker.process_bars("TSLA", _bars([THROUGH_100]), DAY2)
    assert broker.fills_for(order_ref("TSLA", DAY, "BUY"))[0].commission == pytest.approx(1.0)


def test_processes_opening_an_older_database_together_migrate_it_once(tmp_path: Path) -> None:
    """The simulator's schema has migrations of its own (sql/simulator_migrations): processes
    starting together on a database of an older version upgrade it once, under a lock."""
    from concurrent.futures import ThreadPoolExecutor

    from sql.simulator import VERSION_TABLE, upgrade_simulator

    url = f"sqlite:///{tmp_path}/old.db"
    _old_database(url)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _: upgrade_simulator(url), range(3)))
    head = results[0][1]
    assert results.count((None, head)) == 1 and results.count((head, head)) == 2
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).all() == [
            (head,)]
    tables = set(sa.inspect(engine).get_table_names())
    assert {"paper_orders", "paper_fills", "paper_marks"} <= tables


def test_the_simulator_migrations_make_exactly_its_tables(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from sql.simulator import VERSION_TABLE, metadata

    PaperBroker(f"sqlite:///{tmp_path}/new.db", 10_000)
    engine = sa.create_engine(f"sqlite:///{tmp_path}/new.db")
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        assert compare_metadata(context, metadata) == []
