"""Controls of the whole evaluation: no edge where there is none, full edge for an oracle.

Random-walk bars carry no information, so any analyst that reads only past closes must score no
edge: if the scorecard finds one in more than the nominal share of seeds, the evaluator
manufactures it (look-ahead, a biased edge, intervals too narrow). An analyst that sees tomorrow's
close must score a perfect next-session hit rate: the plumbing is aligned.

The false-positive count needs 30 seeds x 3 analysts x 1,000 signals: those outcomes are built
from the closes with numpy, after ``test_numpy_outcomes_equal_the_evaluators`` proved them equal
to what ``score_signal`` / ``score_history`` give on the same bars (scoring 90,000 signals
through them would take most of a minute).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from trading_assets.calendar import sessions_between
from trading_assets.evaluation.models import HORIZONS, Interval, Scorecard, SignalOutcome
from trading_assets.evaluation.outcome import horizon_sessions, score_history, score_signal
from trading_assets.evaluation.scorecard import build_scorecard
from trading_assets.execution.costs import CostModel
from trading_assets.execution.rules import RiskLimits
from trading_assets.models import (
    Action,
    MarketData,
    TradingSignal,
    Trend,
    confidence_level_for,
)

SYMBOLS = ("AAA", "BBB")
EXIT_AFTER = 20
RESAMPLES = 300
SEEDS = range(30)
COSTS = CostModel()
SESSIONS = sessions_between(dt.date(2015, 1, 2), dt.date(2018, 12, 31))
SESSION_DAYS = [ts.date() for ts in SESSIONS]

# An analyst sees the closes up to and including day t of one symbol (and, for the oracle only,
# one more) and returns BUY, SELL or HOLD.
Analyst = Callable[[np.ndarray, int, np.random.Generator], Action]


def always_buy(closes: np.ndarray, t: int, rng: np.random.Generator) -> Action:
    return Action.BUY


def coin(closes: np.ndarray, t: int, rng: np.random.Generator) -> Action:
    return (Action.BUY, Action.SELL, Action.HOLD)[int(rng.integers(0, 3))]


def momentum(closes: np.ndarray, t: int, rng: np.random.Generator) -> Action:
    if t < 5 or closes[t] == closes[t - 5]:
        return Action.HOLD
    return Action.BUY if closes[t] > closes[t - 5] else Action.SELL


def oracle(closes: np.ndarray, t: int, rng: np.random.Generator) -> Action:
    if t + 1 >= len(closes):
        return Action.HOLD
    return Action.BUY if closes[t + 1] > closes[t] else Action.SELL


NO_EDGE_ANALYSTS: dict[str, Analyst] = {
    "always BUY": always_buy, "random": coin, "momentum": momentum,
}


def random_walk_bars(rng: np.random.Generator, sessions: int) -> pd.DataFrame:
    """Geometric random walk without drift in the log price: up and down equally likely."""
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, sessions)))
    previous = np.concatenate([[100.0], close[:-1]])
    open_ = previous * np.exp(rng.normal(0, 0.003, sessions))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.004, sessions)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.004, sessions)))
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close,
         "volume": np.full(sessions, 100_000)},
        index=pd.DatetimeIndex(SESSIONS[:sessions], name="date"),
    )


def make_signal(symbol: str, day: dt.date, action: Action, close: float) -> TradingSignal:
    levels = {}
    if action is Action.BUY:
        levels = dict(entry_price=close, stop_loss=close * 0.97, take_profit=close * 1.06)
    elif action is Action.SELL:
        levels = dict(entry_price=close, stop_loss=close * 1.03, take_profit=close * 0.94)
    return TradingSignal(
        symbol=symbol, as_of=day, action=action, confidence_score=60,
        confidence_level=confidence_level_for(60), reasoning="control", key_factors=["control"],
        trend=Trend.NEUTRAL, position_size_pct=5, provider="control", model_name="control",
        actionable=action is not Action.HOLD, **levels,
    )


def _market(symbol: str, frame: pd.DataFrame, seed: int) -> MarketData:
    return MarketData(
        symbol=symbol, as_of=frame.index[-1].date(), source="synthetic",
        source_detail=f"seed {seed}", bars=frame,
    )


def _signals(
    symbol: str, frame: pd.DataFrame, analyst: Analyst, rng: np.random.Generator
) -> list[TradingSignal]:
    closes = frame["close"].to_numpy()
    return [
        make_signal(symbol, ts.date(), analyst(closes, t, rng), float(closes[t]))
        for t, ts in enumerate(frame.index)
    ]


def scored_by_score_signal(
    bars: dict[str, pd.DataFrame], analyst: Analyst, seed: int
) -> list[SignalOutcome]:
    """Every symbol-day's signal of ``analyst``, scored one by one as the outcome asset does."""
    rng = np.random.default_rng([seed, 1])
    outcomes = []
    for symbol, frame in bars.items():
        market = _market(symbol, frame, seed)
        outcomes += [
            score_signal(
                signal, prompt_version="v1", market=market, costs=COSTS,
                exit_after_sessions=EXIT_AFTER, latest_closed=market.as_of,
            )
            for signal in _signals(symbol, frame, analyst, rng)
        ]
    return outcomes


def scored_by_score_history(
    bars: dict[str, pd.DataFrame], analyst: Analyst, seed: int
) -> list[SignalOutcome]:
    """The same, one pass per symbol (``score_history`` is ``score_signal`` of many signals)."""
    rng = np.random.default_rng([seed, 1])
    outcomes = []
    for symbol, frame in bars.items():
        market = _market(symbol, frame, seed)
        outcomes += score_history(
            [(signal, "v1") for signal in _signals(symbol, frame, analyst, rng)],
            market=market, costs=COSTS, exit_after_sessions=EXIT_AFTER,
            latest_closed=market.as_of,
        )
    return outcomes


def scored_by_numpy(
    bars: dict[str, pd.DataFrame], analyst: Analyst, seed: int
) -> list[SignalOutcome]:
    """The same outcomes' numbers (no bracket), straight from the closes: fast, for many seeds."""
    rng = np.random.default_rng([seed, 1])
    needed = horizon_sessions(EXIT_AFTER)
    level = confidence_level_for(60)
    outcomes = []
    for symbol, frame in bars.items():
        closes = frame["close"].to_numpy()
        days = [ts.date() for ts in frame.index]
        for t, day in enumerate(days):
            action = analyst(closes, t, rng)
            scorable = t + needed < len(days)
            outcomes.append(SignalOutcome(
                symbol=symbol, as_of=day, scorable=scorable, status="scored",
                horizon_end=SESSION_DAYS[t + needed],
                source="synthetic", action=action, confidence_score=60.0,
                confidence_level=level, actionable=action is not Action.HOLD,
                position_size_pct=5.0, provider="control", model_name="control",
                prompt_version="v1", close=float(closes[t]),
                forward_returns=(
                    {h: float(closes[t + h]) / float(closes[t]) - 1 for h in HORIZONS}
                    if scorable else {}
                ),
                exit_after_sessions=EXIT_AFTER, costs=COSTS,
            ))
    return outcomes


def seed_bars(seed: int, sessions: int) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    return {symbol: random_walk_bars(rng, sessions) for symbol in SYMBOLS}


def scorecard(outcomes: list[SignalOutcome]) -> Scorecard:
    return build_scorecard(
        outcomes, limits=RiskLimits(), costs=COSTS, starting_cash=100_000.0,
        resamples=RESAMPLES, by=(),
    )


def buy_edge(card: Scorecard, h: int = 5) -> Interval:
    return next(a for a in card.overall.actions if a.action is Action.BUY).edge[h]


def _same_numbers(evaluated: list[SignalOutcome], fast: list[SignalOutcome]) -> None:
    assert [(o.symbol, o.as_of, o.action, o.scorable) for o in evaluated] == [
        (o.symbol, o.as_of, o.action, o.scorable) for o in fast
    ]
    for e, f in zip(evaluated, fast, strict=True):
        assert e.forward_returns.keys() == f.forward_returns.keys()
        assert e.forward_returns == pytest.approx(f.forward_returns, rel=1e-12, abs=1e-15)
    evaluated_edge, fast_edge = buy_edge(scorecard(evaluated)), buy_edge(scorecard(fast))
    assert evaluated_edge.estimate == pytest.approx(fast_edge.estimate, abs=1e-12)
    assert (evaluated_edge.low, evaluated_edge.high) == pytest.approx(
        (fast_edge.low, fast_edge.high), abs=1e-12
    )


def test_numpy_outcomes_equal_the_evaluators() -> None:
    # A forward return measured from the wrong session would make the momentum analyst (it reads
    # past closes) look clever or foolish: the numbers must be the evaluator's exactly.
    bars = seed_bars(1000, 500)
    for analyst in NO_EDGE_ANALYSTS.values():
        _same_numbers(scored_by_score_history(bars, analyst, 1000),
                      scored_by_numpy(bars, analyst, 1000))
    short = {symbol: frame.iloc[:80] for symbol, frame in bars.items()}
    one_by_one = scored_by_score_signal(short, momentum, 1000)
    _same_numbers(one_by_one, scored_by_numpy(short, momentum, 1000))
    # The last horizon's sessions of each symbol wait for their bars.
    card = scorecard(one_by_one)
    assert card.not_yet_scorable == len(SYMBOLS) * horizon_sessions(EXIT_AFTER)
    assert card.scored == len(SYMBOLS) * (80 - horizon_sessions(EXIT_AFTER))


def test_no_edge_control_false_positives_stay_near_nominal() -> None:
    edges: dict[str, list[Interval]] = {name: [] for name in NO_EDGE_ANALYSTS}
    for seed in SEEDS:
        bars = seed_bars(seed, 500)
        for name, analyst in NO_EDGE_ANALYSTS.items():
            edges[name].append(buy_edge(scorecard(scored_by_numpy(bars, analyst, seed))))
    for name, ivs in edges.items():
        estimates = np.array([iv.estimate for iv in ivs])
        false_positive = np.mean([iv.significant for iv in ivs])
        assert false_positive <= 0.15, (name, false_positive)
        # Unbiased: the mean edge over seeds within three standard errors of zero.
        spread = estimates.std(ddof=1) / np.sqrt(len(estimates))
        assert abs(estimates.mean()) <= 3 * spread + 1e-12, (name, estimates.mean(), spread)
    # Always BUY is the whole sample: its edge is zero by construction, in every resample too.
    assert all(iv.estimate == 0 and iv.low == 0 and iv.high == 0 for iv in edges["always BUY"])


def test_oracle_control_scores_a_perfect_next_session() -> None:
    bars = seed_bars(7, 150)
    outcomes = scored_by_score_signal(bars, oracle, seed=7)
    card = scorecard(outcomes)
    overall = card.overall
    assert overall.hit_rate[1].estimate >= 0.99
    assert overall.hit_rate[1].low > 0.5
    stats = {a.action: a for a in overall.actions}
    assert stats[Action.BUY].edge[1].significant and stats[Action.BUY].edge[1].low > 0
    assert stats[Action.SELL].edge[1].significant and stats[Action.SELL].edge[1].high < 0
    assert stats[Action.BUY].edge[5].low > 0
    assert overall.verdict.startswith("significant positive edge"), overall.verdict
    # The brackets were simulated too: the oracle's trades fill and mostly win.
    assert overall.trades.signals == card.scored
    assert overall.trades.filled > 0
