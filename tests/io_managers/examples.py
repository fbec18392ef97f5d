"""Small hand-built values of every type the artifact IO manager stores."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pandas as pd
from PIL import Image

from trading_assets.models import (
    Action,
    ChartImage,
    ConfidenceLevel,
    Fill,
    LlmAnalysis,
    MarketData,
    OrderDecision,
    OrderSide,
    OrderTicket,
    PortfolioSnapshot,
    Position,
    Timeframe,
    TradingSignal,
    Trend,
)

DAY = dt.date(2025, 1, 2)
SYMBOL = "TSLA"
FILLED_AT = dt.datetime(2025, 1, 2, 15, 30, tzinfo=dt.UTC)


def png(width: int = 800, height: int = 500, color: str = "steelblue") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


def market_data(day: dt.date = DAY, source_detail: str = "seed 42") -> MarketData:
    dates = pd.bdate_range(end=pd.Timestamp(day), periods=30, name="date")
    close = np.linspace(100.0, 129.0, 30)
    bars = pd.DataFrame(
        {
            "open": close - 0.5,
            "high": close + 1.0,
            "low": close - 1.0,
            "close": close,
            "volume": np.arange(1_000_000, 1_000_030, dtype="int64"),
        },
        index=dates,
    )
    return MarketData(
        symbol=SYMBOL, as_of=day, source="synthetic", source_detail=source_detail, bars=bars
    )


def chart(day: dt.date = DAY) -> ChartImage:
    return ChartImage(
        symbol=SYMBOL,
        as_of=day,
        timeframe=Timeframe.DAILY,
        png=png(),
        width=800,
        height=500,
        bars_shown=30,
        indicators=["sma20", "bb_upper", "bb_lower"],
        omitted_indicators=["sma200"],
        last_values={"sma20": 120.5, "sma200": None},
    )


def llm(day: dt.date = DAY) -> LlmAnalysis:
    return LlmAnalysis(
        symbol=SYMBOL,
        as_of=day,
        provider="offline",
        model_name="offline-rules-v1",
        prompt_version="signal_v1",
        prompt="Analyse TSLA daily and weekly charts.",
        image_sha256={"daily": "a" * 64, "weekly": "b" * 64},
        response='{"action": "BUY"}',
        input_tokens=1200,
        output_tokens=80,
        latency_ms=12.5,
        indicators={"rsi14": 55.2, "macd": None},
    )


def signal(day: dt.date = DAY, reasoning: str = "uptrend above SMA20") -> TradingSignal:
    return TradingSignal(
        symbol=SYMBOL,
        as_of=day,
        action=Action.BUY,
        confidence_score=85,
        confidence_level=ConfidenceLevel.HIGH,
        reasoning=reasoning,
        key_factors=["higher highs", "volume rising"],
        trend=Trend.BULLISH,
        support=95.0,
        resistance=115.0,
        entry_price=100.0,
        stop_loss=95.0,
        take_profit=110.0,
        risk_reward_ratio=2.0,
        position_size_pct=5,
        provider="offline",
        model_name="offline-rules-v1",
        actionable=True,
    )


def order(day: dt.date = DAY) -> OrderDecision:
    ticket = OrderTicket(
        order_ref="TSLA-2025-01-02",
        broker="paper",
        symbol=SYMBOL,
        side=OrderSide.BUY,
        quantity=10,
        limit_price=100.0,
        stop_loss=95.0,
        take_profit=110.0,
        status="filled",
        submitted_at=FILLED_AT,
    )
    fill = Fill(
        order_ref=ticket.order_ref, symbol=SYMBOL, side=OrderSide.BUY, quantity=10, price=99.9,
        filled_at=FILLED_AT,
    )
    return OrderDecision(
        symbol=SYMBOL, as_of=day, placed=True, reason="BUY HIGH", mode="simulate", order=ticket,
        fills=[fill],
    )


def portfolio(day: dt.date = DAY) -> PortfolioSnapshot:
    position = Position(
        symbol=SYMBOL, quantity=10, average_cost=99.9, market_price=101.0, market_value=1010.0,
        unrealized_pnl=11.0,
    )
    return PortfolioSnapshot(
        as_of=day, symbol=SYMBOL, source="paper", cash=99_001.0, positions=[position],
        total_value=100_011.0, unrealized_pnl=11.0, realized_pnl=0.0,
    )


ALL = {
    "market_data": market_data,
    "chart": chart,
    "llm": llm,
    "signal": signal,
    "order": order,
    "portfolio": portfolio,
}
