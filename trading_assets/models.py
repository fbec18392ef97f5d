"""Typed values that cross asset boundaries; the artifact IO manager serializes each one."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

BAR_COLUMNS = ("open", "high", "low", "close", "volume")
MarketDataSource = Literal["synthetic", "csv", "parquet", "ibkr"]
REAL_SOURCES: frozenset[str] = frozenset({"csv", "parquet", "ibkr"})


class MarketData(BaseModel):
    """Daily OHLCV bars for one symbol, ending at (never after) ``as_of``.

    ``bars`` is indexed by a tz-naive ``DatetimeIndex`` named ``date`` (one row per
    trading session, ascending) with float columns open, high, low, close and an
    integer-valued ``volume`` column.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    symbol: str
    as_of: dt.date
    source: MarketDataSource
    source_detail: str = Field(description="where the bars came from: a file path, a seed, a host")
    bars: pd.DataFrame

    @property
    def is_synthetic(self) -> bool:
        return self.source not in REAL_SOURCES

    @property
    def latest_close(self) -> float:
        return float(self.bars["close"].iloc[-1])

    @model_validator(mode="after")
    def _check_bars(self) -> MarketData:
        missing = [c for c in BAR_COLUMNS if c not in self.bars.columns]
        if missing:
            raise ValueError(f"market data for {self.symbol} lacks columns {missing}")
        if self.bars.empty:
            raise ValueError(f"market data for {self.symbol} has no bars up to {self.as_of}")
        index = self.bars.index
        if not isinstance(index, pd.DatetimeIndex) or index.tz is not None:
            raise ValueError(
                f"market data for {self.symbol} must be indexed by tz-naive session dates"
            )
        not_numeric = [c for c in BAR_COLUMNS if not pd.api.types.is_numeric_dtype(self.bars[c])]
        if not_numeric:
            raise ValueError(f"market data for {self.symbol}: non-numeric columns {not_numeric}")
        last = self.bars.index.max().date()
        if last > self.as_of:
            raise ValueError(
                f"market data for {self.symbol} has a bar on {last}, after the partition date "
                f"{self.as_of} (look-ahead)"
            )
        if not self.bars.index.is_monotonic_increasing or self.bars.index.has_duplicates:
            raise ValueError(
                f"market data for {self.symbol}: bar dates must be unique and ascending"
            )
        return self


class Timeframe(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"


class ChartImage(BaseModel):
    """A rendered PNG chart and what is drawn on it."""

    model_config = ConfigDict(frozen=True)

    symbol: str
    as_of: dt.date
    timeframe: Timeframe
    png: bytes = Field(repr=False)
    width: int
    height: int
    bars_shown: int
    indicators: list[str] = Field(description="indicator series drawn on the chart")
    omitted_indicators: list[str] = Field(
        default_factory=list, description="series left out because history was too short"
    )
    last_values: dict[str, float | None] = Field(default_factory=dict)


class LlmAttempt(BaseModel):
    """One request to the model and what came back, exactly as sent and received."""

    purpose: Literal["answer", "repair"]
    sent: str = Field(description="the text sent in this request (the prompt, or the repair note)")
    response: str = Field(default="", description="the answer text as received ('' if none)")
    raw: str = Field(default="", description="the whole API response body as JSON")
    error: str | None = Field(default=None, description="why this answer was rejected, if it was")
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: float = 0.0
    retries: int = Field(default=0, description="transport retries (timeouts, 429, 5xx) it took")


class LlmAnalysis(BaseModel):
    """One model's reading of both charts: everything sent and received."""

    symbol: str
    as_of: dt.date
    provider: str
    model_name: str
    prompt_version: str
    prompt: str
    image_sha256: dict[str, str] = Field(description="timeframe -> sha256 of the PNG sent")
    response: str = Field(description="the raw response text, exactly as received")
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: float = 0.0
    cost_usd: float = 0.0
    priced: bool = Field(
        default=True,
        description="False when the price table does not list the model of a local server: "
        "cost_usd is then 0 because the cost is unknown, not because it was free",
    )
    indicators: dict[str, float | None] = Field(default_factory=dict)
    cached: bool = False
    attempts: list[LlmAttempt] = Field(default_factory=list, description="every request, in order")
    error: str | None = Field(
        default=None, description="why no valid answer came back; None for a usable analysis"
    )
    cache_key: str | None = Field(
        default=None, description="sha256 of provider, model, prompt and image hashes"
    )
    cached_from: str | None = Field(
        default=None, description="the artifact whose stored response a cached analysis reuses"
    )


class Action(StrEnum):
    BUY = "BUY"
    SELL = "SELL"
    HOLD = "HOLD"


class ConfidenceLevel(StrEnum):
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


def confidence_level_for(score: float) -> ConfidenceLevel:
    """HIGH >= 80, MEDIUM 50-79, LOW < 50 (SPEC.md)."""
    if score >= 80:
        return ConfidenceLevel.HIGH
    if score >= 50:
        return ConfidenceLevel.MEDIUM
    return ConfidenceLevel.LOW


class Trend(StrEnum):
    BULLISH = "BULLISH"
    BEARISH = "BEARISH"
    NEUTRAL = "NEUTRAL"


class OrderSide(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class Fill(BaseModel):
    order_ref: str
    symbol: str
    side: OrderSide
    quantity: float
    price: float
    filled_at: dt.datetime
    leg: Literal["entry", "stop_loss", "take_profit"] = "entry"
    commission: float = Field(default=0.0, description="USD paid for this fill")
    slippage: float = Field(default=0.0, description="USD: |price - price before slippage| x qty")


class OrderTicket(BaseModel):
    """A bracket order: limit entry with attached stop loss and take profit."""

    order_ref: str = Field(description="deterministic: one order per symbol and trading day")
    broker: str
    symbol: str
    side: OrderSide
    quantity: float = Field(gt=0)
    limit_price: float = Field(gt=0)
    stop_loss: float | None = Field(default=None, gt=0)
    take_profit: float | None = Field(default=None, gt=0)
    status: str
    submitted_at: dt.datetime
    broker_order_id: str | None = None


class OrderDecision(BaseModel):
    """The order asset's value: the order placed, or the explicit reason none was."""

    symbol: str
    as_of: dt.date
    placed: bool
    reason: str
    mode: str
    order: OrderTicket | None = None
    fills: list[Fill] = Field(default_factory=list)
    reused_existing: bool = Field(
        default=False, description="true when an order for this symbol-day already existed"
    )

    @model_validator(mode="after")
    def _order_iff_placed(self) -> OrderDecision:
        if self.placed != (self.order is not None):
            raise ValueError("an order decision has an order exactly when placed is true")
        return self


class Position(BaseModel):
    symbol: str
    quantity: float
    average_cost: float
    market_price: float
    market_value: float
    unrealized_pnl: float


class PortfolioSnapshot(BaseModel):
    as_of: dt.date
    symbol: str = Field(description="the partition's symbol; the snapshot covers the account")
    source: str
    cash: float
    positions: list[Position]
    total_value: float
    unrealized_pnl: float
    realized_pnl: float
    fills_today: list[Fill] = Field(default_factory=list)
    read: bool = Field(
        default=True,
        description="False when the account was not read (a backfill or an older partition in "
        "an IBKR mode): the amounts are then zero placeholders, not the account's",
    )

    @field_validator("positions")
    @classmethod
    def _sorted(cls, v: list[Position]) -> list[Position]:
        return sorted(v, key=lambda p: p.symbol)


class TradingSignal(BaseModel):
    """A validated trading decision. Invalid combinations raise ``ValueError`` naming them."""

    model_config = ConfigDict(frozen=True)

    symbol: str
    as_of: dt.date
    action: Action
    confidence_score: float = Field(ge=0, le=100)
    confidence_level: ConfidenceLevel
    reasoning: str = Field(min_length=1)
    key_factors: list[str] = Field(min_length=1)
    trend: Trend
    support: float | None = Field(default=None, gt=0)
    resistance: float | None = Field(default=None, gt=0)
    entry_price: float | None = Field(default=None, gt=0)
    stop_loss: float | None = Field(default=None, gt=0)
    take_profit: float | None = Field(default=None, gt=0)
    risk_reward_ratio: float | None = Field(default=None, ge=0)
    position_size_pct: float = Field(
        ge=0, le=100, description="suggested position size, percent of portfolio value"
    )
    provider: str
    model_name: str
    actionable: bool = False
    min_confidence_score: float = Field(default=50, ge=0, le=100)

    @model_validator(mode="after")
    def _consistent(self) -> TradingSignal:
        expected = confidence_level_for(self.confidence_score)
        if self.confidence_level != expected:
            raise ValueError(
                f"confidence_level {self.confidence_level.value} does not match score "
                f"{self.confidence_score:g} (expected {expected.value}: HIGH >= 80, "
                "MEDIUM 50-79, LOW < 50)"
            )
        levels = (self.support, self.resistance)
        if None not in levels and self.support > self.resistance:  # type: ignore[operator]
            raise ValueError(f"support {self.support} is above resistance {self.resistance}")
        if self.action is Action.HOLD:
            if self.actionable:
                raise ValueError("a HOLD signal cannot be actionable")
            return self
        prices = {
            "entry_price": self.entry_price,
            "stop_loss": self.stop_loss,
            "take_profit": self.take_profit,
        }
        absent = [k for k, v in prices.items() if v is None]
        if absent:
            raise ValueError(f"a {self.action.value} signal needs {', '.join(absent)}")
        entry, stop, target = self.entry_price, self.stop_loss, self.take_profit
        assert entry is not None and stop is not None and target is not None
        if self.action is Action.BUY and not (stop < entry < target):
            raise ValueError(
                f"a BUY needs stop_loss < entry_price < take_profit, got stop {stop}, "
                f"entry {entry}, target {target}"
            )
        if self.action is Action.SELL and not (target < entry < stop):
            raise ValueError(
                f"a SELL needs take_profit < entry_price < stop_loss, got target {target}, "
                f"entry {entry}, stop {stop}"
            )
        computed = abs(target - entry) / abs(entry - stop)
        if self.risk_reward_ratio is not None and abs(self.risk_reward_ratio - computed) > max(
            0.05, 0.05 * computed
        ):
            raise ValueError(
                f"risk_reward_ratio {self.risk_reward_ratio:g} does not match the prices "
                f"(|target - entry| / |entry - stop| = {computed:.2f})"
            )
        if self.actionable and self.confidence_score < self.min_confidence_score:
            raise ValueError(
                f"a signal with confidence {self.confidence_score:g} below the threshold "
                f"{self.min_confidence_score:g} cannot be actionable"
            )
        return self
