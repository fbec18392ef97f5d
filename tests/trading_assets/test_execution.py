import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from trading_assets.execution.paper_broker import PaperBroker
from trading_assets.execution.rules import NoOrder, OrderIntent, RiskLimits, decide, order_ref
from trading_assets.models import OrderSide, TradingSignal

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


def test_marketable_limit_fills_at_the_close_and_only_once(tmp_path: Path) -> None:
    broker = PaperBroker(f"sqlite:///{tmp_path}/paper.db", 10_000)
    ref = order_ref("TSLA", "2025-06-02")
    ticket, created = broker.submit(ref, "TSLA", DAY, INTENT, close=99.5)
    assert created and ticket.status == "filled"
    again, created_again = broker.submit(ref, "TSLA", DAY, INTENT, close=99.5)
    assert not created_again and again.order_ref == ref
    other_ref, created_other = broker.submit("other-ref", "TSLA", DAY, INTENT, close=99.5)
    assert not created_other and other_ref.order_ref == ref  # one order per symbol and day
    assert len(broker.fills_for(ref)) == 1
    snap = broker.snapshot(DAY, "TSLA")
    assert snap.cash == pytest.approx(10_000 - 995)
    assert snap.positions[0].quantity == 10 and snap.total_value == pytest.approx(10_000)


def test_bracket_exits_at_take_profit_on_a_later_bar(tmp_path: Path) -> None:
    broker = PaperBroker(f"sqlite:///{tmp_path}/paper.db", 10_000)
    ref = order_ref("TSLA", "2025-06-02")
    broker.submit(ref, "TSLA", DAY, INTENT, close=100.0)
    bars = _bars([("2025-06-02", 99, 101, 98, 100), ("2025-06-03", 101, 104, 100, 103),
                  ("2025-06-04", 104, 112, 103, 111)])
    broker.process_bars("TSLA", bars, dt.date(2025, 6, 3))
    assert broker.find_order(ref).status == "filled"
    broker.process_bars("TSLA", bars, dt.date(2025, 6, 4))
    assert broker.find_order(ref).status == "closed"
    legs = [(f.leg, f.side, f.price) for f in broker.fills_for(ref)]
    assert legs == [("entry", OrderSide.BUY, 100.0), ("take_profit", OrderSide.SELL, 110.0)]
    snap = broker.snapshot(dt.date(2025, 6, 4), "TSLA")
    assert snap.positions == [] and snap.realized_pnl == pytest.approx(100.0)
    assert [f.leg for f in snap.fills_today] == ["take_profit"]
    broker.process_bars("TSLA", bars, dt.date(2025, 6, 4))  # replay: nothing more
    assert len(broker.fills_for(ref)) == 2


def test_a_bar_touching_stop_and_target_exits_at_the_stop(tmp_path: Path) -> None:
    broker = PaperBroker(f"sqlite:///{tmp_path}/paper.db", 10_000)
    ref = order_ref("TSLA", "2025-06-02")
    broker.submit(ref, "TSLA", DAY, INTENT, close=100.0)
    bars = _bars([("2025-06-03", 100, 111, 94, 100)])
    broker.process_bars("TSLA", bars, dt.date(2025, 6, 3))
    assert broker.fills_for(ref)[-1].leg == "stop_loss"
    assert broker.snapshot(dt.date(2025, 6, 3), "TSLA").realized_pnl == pytest.approx(-50.0)


def test_unmarketable_limit_works_until_the_price_trades_through(tmp_path: Path) -> None:
    broker = PaperBroker(f"sqlite:///{tmp_path}/paper.db", 10_000)
    ref = order_ref("TSLA", "2025-06-02")
    ticket, _ = broker.submit(ref, "TSLA", DAY, INTENT, close=102.0)
    assert ticket.status == "working" and broker.fills_for(ref) == []
    broker.process_bars("TSLA", _bars([("2025-06-03", 101, 103, 99.5, 102)]), dt.date(2025, 6, 3))
    fill = broker.fills_for(ref)[0]
    assert fill.price == 100.0 and fill.filled_at.date() == dt.date(2025, 6, 3)


def test_snapshot_marks_positions_to_the_latest_close(tmp_path: Path) -> None:
    broker = PaperBroker(f"sqlite:///{tmp_path}/paper.db", 10_000)
    broker.submit(order_ref("TSLA", "2025-06-02"), "TSLA", DAY, INTENT, close=100.0)
    broker.record_mark("TSLA", dt.date(2025, 6, 3), 104.0)
    snap = broker.snapshot(dt.date(2025, 6, 3), "TSLA")
    assert snap.unrealized_pnl == pytest.approx(40.0)
    assert snap.total_value == pytest.approx(10_040.0)
    assert broker.snapshot(DAY, "TSLA").unrealized_pnl == 0  # as of the fill day: cost basis
