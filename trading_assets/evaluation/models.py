"""Typed values of the evaluation group: a signal's outcome, the scorecard, and its plots.

Returns are fractions (0.012 is +1.2 %); prices are per share; dates are trading sessions.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from trading_assets.execution.costs import CostModel
from trading_assets.models import Action, ConfidenceLevel, OrderSide

HORIZONS: tuple[int, ...] = (1, 5, 20)
EXCURSION_HORIZON = 20
DEFAULT_EXIT_AFTER_SESSIONS = 20

ExitReason = Literal["stop_loss", "take_profit", "time_exit"]


class TradeOutcome(BaseModel):
    """The bracket of an actionable BUY/SELL, simulated on the bars after the signal's day."""

    model_config = ConfigDict(frozen=True)

    side: OrderSide
    limit_price: float
    stop_loss: float
    take_profit: float
    filled: bool
    entry_note: str = Field(description="how the entry filled, or why it did not")
    entry_date: dt.date | None = None
    entry_price: float | None = Field(default=None, description="after slippage")
    exit_date: dt.date | None = None
    exit_price: float | None = Field(default=None, description="after slippage")
    exit_reason: ExitReason | None = None
    exit_note: str = ""
    spanned_stop_and_target: bool = Field(
        default=False, description="a bar reached both stop and target; the stop was counted"
    )
    gapped_through: bool = Field(default=False, description="the exit filled at a gapped open")
    sessions_held: int = Field(default=0, description="sessions from entry to exit, both counted")
    gross_return: float | None = Field(default=None, description="before costs, in the direction")
    net_return: float | None = Field(default=None, description="after slippage and commission")
    r_multiple: float | None = Field(
        default=None, description="net profit per share / planned risk per share (|limit - stop|)"
    )
    commission_per_share: float = 0.0
    slippage_per_share: float = 0.0
    # Closes from the entry through the exit session, to mark an equity curve day by day.
    path_dates: list[dt.date] = Field(default_factory=list)
    path_closes: list[float] = Field(default_factory=list)


class SignalOutcome(BaseModel):
    """What the price did after one symbol-day's signal, read after the fact."""

    model_config = ConfigDict(frozen=True)

    symbol: str
    as_of: dt.date
    scorable: bool
    status: str = Field(description="'scored', or why not yet (which session the horizon needs)")
    horizon_end: dt.date = Field(description="the last session the outcome needs")
    bars_through: dt.date | None = Field(
        default=None, description="the last bar read (never after horizon_end)"
    )
    source: str
    source_detail: str = ""
    action: Action
    confidence_score: float
    confidence_level: ConfidenceLevel
    actionable: bool
    position_size_pct: float = Field(description="the signal's suggested size, % of equity")
    provider: str
    model_name: str
    prompt_version: str
    close: float = Field(description="the close of the signal's day")
    forward_returns: dict[int, float] = Field(
        default_factory=dict, description="sessions ahead -> close-to-close return"
    )
    max_favourable_excursion: float | None = Field(
        default=None, description="best move in the signal's direction (long for HOLD) over 20"
    )
    max_adverse_excursion: float | None = Field(
        default=None, description="worst move against the signal's direction (long for HOLD)"
    )
    forward_dates: list[dt.date] = Field(
        default_factory=list, description="the sessions after as_of up to horizon_end"
    )
    forward_closes: list[float] = Field(default_factory=list)
    trade: TradeOutcome | None = None
    exit_after_sessions: int = DEFAULT_EXIT_AFTER_SESSIONS
    costs: CostModel = Field(default_factory=CostModel)


class Interval(BaseModel):
    """A point estimate with its bootstrap 95 % confidence interval (None: too few values)."""

    model_config = ConfigDict(frozen=True)

    estimate: float | None
    low: float | None = None
    high: float | None = None
    n: int = 0

    @property
    def significant(self) -> bool:
        """The interval excludes zero (for an edge) -- callers compare hit rates with 0.5."""
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)


class ActionStats(BaseModel):
    action: Action
    count: int
    mean_return: dict[int, Interval] = Field(description="horizon -> mean forward return")
    edge: dict[int, Interval] = Field(
        description="horizon -> mean forward return after this action minus the mean over all "
        "signals of the same days"
    )
    hit_rate: dict[int, Interval] = Field(
        default_factory=dict, description="horizon -> share right (BUY up, SELL down); not HOLD"
    )


class CalibrationRow(BaseModel):
    bucket: str = Field(description="LOW / MEDIUM / HIGH, or a score decile such as '80-90'")
    kind: Literal["level", "decile"]
    count: int
    mean_score: float | None
    hit_rate: dict[int, Interval]


class TradeStats(BaseModel):
    signals: int = Field(description="actionable BUY/SELL signals")
    filled: int
    win_rate: Interval
    expectancy_r: Interval
    profit_factor: float | None = Field(description="gross wins / gross losses, net of costs")
    average_sessions_held: float | None
    spanned_stop_and_target: int
    exits: dict[str, int] = Field(default_factory=dict, description="exit reason -> count")


class CurveStats(BaseModel):
    total_return: float
    annualised_sharpe: float | None
    max_drawdown: float


class EquityCurve(BaseModel):
    dates: list[dt.date]
    strategy: list[float] = Field(description="account value following the signals")
    buy_and_hold: list[float] = Field(description="the same money split over the same symbols")
    strategy_stats: CurveStats
    buy_and_hold_stats: CurveStats
    starting_cash: float


class GroupScore(BaseModel):
    """Every statistic over one group of outcomes (all of them, or one provider/model/prompt)."""

    by: Literal["all", "provider", "model", "prompt"]
    key: str
    outcomes: int
    days: int
    symbols: list[str]
    counts: dict[str, int] = Field(description="action -> signals")
    hit_rate: dict[int, Interval] = Field(description="BUY and SELL together, per horizon")
    actions: list[ActionStats]
    unconditional_mean: dict[int, float | None]
    calibration: list[CalibrationRow]
    trades: TradeStats
    verdict: str = Field(description="one sentence: is there an edge, at which confidence")


class Comparison(BaseModel):
    """Two groups on the outcomes they share (same symbol-days)."""

    by: Literal["provider", "model", "prompt"]
    first: str
    second: str
    shared: int
    difference: dict[int, Interval] = Field(
        description="horizon -> mean directional return of first minus second, paired"
    )
    verdict: str


class Scorecard(BaseModel):
    start: dt.date | None
    end: dt.date | None
    symbols: list[str]
    scored: int
    not_yet_scorable: int
    overall: GroupScore
    groups: list[GroupScore] = Field(default_factory=list)
    comparisons: list[Comparison] = Field(default_factory=list)
    equity_curve: EquityCurve | None
    costs: CostModel
    bootstrap_resamples: int
    bootstrap_seed: int
    block_sessions: dict[int, int] = Field(
        description="horizon -> block length of the block bootstrap (overlapping returns)"
    )


class PlotImage(BaseModel):
    """A PNG plot of the scorecard, stored as an artifact of type 'plot'."""

    model_config = ConfigDict(frozen=True)

    name: Literal["equity_curve", "calibration"]
    title: str
    png: bytes = Field(repr=False)
    width: int
    height: int
    as_of: dt.date | None = None
