"""Materialization metadata for people: prices in cents, ratios to 2 decimals, and numbers the
Plots tab can chart beside the text to read."""

import datetime as dt
import json

from tests.io_managers import examples
from tests.trading_assets.test_signal import ANSWER
from trading_assets.analysis.assets import analysis_metadata, signal_metadata
from trading_assets.execution.assets import order_metadata
from trading_assets.models import OrderDecision, OrderSide, OrderTicket, TradingSignal

DAY = dt.date(2025, 6, 2)


def _signal() -> TradingSignal:
    return TradingSignal(
        symbol="TSLA", as_of=DAY, action="BUY", confidence_score=88, confidence_level="HIGH",
        reasoning="trend up", key_factors=["close above SMA 50"], trend="BULLISH",
        entry_price=101.23456, stop_loss=96.00123, take_profit=111.45678,
        risk_reward_ratio=1.99934, position_size_pct=5.0, provider="offline",
        model_name="offline-rules-v1",
    )


def test_signal_metadata_rounds_for_reading_and_gives_numbers_to_plot() -> None:
    metadata = signal_metadata(_signal())
    assert metadata["confidence"] == "HIGH (88)"  # to read
    assert metadata["confidence_score"] == 88.0 and isinstance(metadata["confidence_score"], float)
    assert metadata["risk_reward"] == 2.0
    assert (metadata["entry"], metadata["stop_loss"], metadata["take_profit"]) == (
        101.23, 96.0, 111.46
    )
    for key in ("confidence_score", "risk_reward", "entry", "stop_loss", "take_profit"):
        assert type(metadata[key]) is float, key


def test_a_hold_has_no_levels_to_plot() -> None:
    levels = dict.fromkeys(("entry_price", "stop_loss", "take_profit", "risk_reward_ratio"))
    hold = TradingSignal(**{**_signal().model_dump(), "action": "HOLD", **levels})
    metadata = signal_metadata(hold)
    assert metadata["entry"] is None and metadata["risk_reward"] is None


def test_order_metadata_gives_the_tickets_size_and_limit_as_numbers() -> None:
    ticket = OrderTicket(
        order_ref="ts:TSLA:2025-06-02:BUY", broker="paper", symbol="TSLA", side=OrderSide.BUY,
        quantity=12, limit_price=101.230000001, stop_loss=96.0, take_profit=111.46,
        status="submitted", submitted_at=dt.datetime(2025, 6, 2, 20, tzinfo=dt.UTC),
    )
    decision = OrderDecision(
        symbol="TSLA", as_of=DAY, placed=True, reason="placed", mode="simulate", order=ticket
    )
    metadata = order_metadata(decision, "TSLA", DAY, "simulate")
    assert metadata["quantity"] == 12.0 and type(metadata["quantity"]) is float
    assert metadata["limit_price"] == 101.23
    none = OrderDecision(symbol="TSLA", as_of=DAY, placed=False, reason="HOLD", mode="simulate")
    assert "quantity" not in order_metadata(none, "TSLA", DAY, "simulate")


def test_analysis_metadata_rounds_latency_and_keeps_the_cost_of_a_cheap_call() -> None:
    analysis = examples.llm(DAY).model_copy(update={
        "response": json.dumps(ANSWER), "latency_ms": 1234.56789, "cost_usd": 0.000123456,
    })
    metadata = analysis_metadata(analysis)
    assert metadata["latency_ms"] == 1234.6
    assert metadata["cost_usd"] == 0.000123
