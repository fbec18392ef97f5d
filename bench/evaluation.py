"""Figures of the evaluation group: scoring years of daily signals after the fact, the scorecard.

The signals come from a cheap deterministic rule on past closes (20-session momentum), so the
figure measures the scoring, not a model. Every figure runs on synthetic bars, in memory.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.stats import Figure, skipped
from trading_assets.calendar import sessions_between
from trading_assets.evaluation.models import EXCURSION_HORIZON, HORIZONS, SignalOutcome
from trading_assets.evaluation.outcome import horizon_end, score_history, score_signal
from trading_assets.execution.costs import CostModel
from trading_assets.market_data.synthetic import ORIGIN, TRADING_DAYS_PER_YEAR, synthetic_bars
from trading_assets.models import MarketData, TradingSignal, confidence_level_for

EXIT_AFTER_SESSIONS = 20
MOMENTUM_SESSIONS = 20
# Beyond +-2 % of 20-session momentum the rule buys / sells; inside it holds.
MOMENTUM_THRESHOLD = 0.02
STOP_PCT, TARGET_PCT = 0.02, 0.04
PROMPT_VERSION = "bench-momentum"
# How many signals of one symbol score_signal is timed on, one call each, for the note.
ONE_BY_ONE_SAMPLE = 200
SCORING_TARGET_SECONDS = 10.0
SCORECARD_TARGET_SECONDS = 10.0
SCORECARD_RESAMPLES = 2000


@dataclass(frozen=True)
class _History:
    """One symbol's bars and one momentum signal per session over the measured years."""

    market: MarketData
    signals: list[tuple[TradingSignal, str]]
    days: np.ndarray  # bar positions of the signal days


def _signal(symbol: str, day: dt.date, close: float, momentum: float) -> TradingSignal:
    score = round(min(95.0, 50.0 + 500.0 * abs(momentum)), 1)
    common = dict(
        symbol=symbol, as_of=day, confidence_score=score,
        confidence_level=confidence_level_for(score),
        reasoning=f"20-session momentum {momentum:+.2%}", key_factors=["momentum"],
        trend="NEUTRAL", provider="bench", model_name="momentum-20",
    )
    if momentum > MOMENTUM_THRESHOLD:
        return TradingSignal(
            **common, action="BUY", entry_price=close, stop_loss=close * (1 - STOP_PCT),
            take_profit=close * (1 + TARGET_PCT), position_size_pct=10, actionable=True,
        )
    if momentum < -MOMENTUM_THRESHOLD:
        return TradingSignal(
            **common, action="SELL", entry_price=close, stop_loss=close * (1 + STOP_PCT),
            take_profit=close * (1 - TARGET_PCT), position_size_pct=10, actionable=True,
        )
    return TradingSignal(**common, action="HOLD", position_size_pct=0)


def build_history(symbol: str, years: int) -> _History:
    """``years`` x 252 sessions of signals after a momentum look-back, and the bars through the
    last signal's horizon."""
    count = years * TRADING_DAYS_PER_YEAR
    # The path starts on ORIGIN, a session: bar positions are positions in this calendar.
    sessions = sessions_between(
        ORIGIN, ORIGIN + dt.timedelta(days=2 * (MOMENTUM_SESSIONS + count) + 10)
    )
    last_day = sessions[MOMENTUM_SESSIONS + count - 1].date()
    market = synthetic_bars(symbol, horizon_end(last_day, EXIT_AFTER_SESSIONS), 10**6)
    close = market.bars["close"].to_numpy()
    days = np.arange(MOMENTUM_SESSIONS, MOMENTUM_SESSIONS + count)
    momentum = close[days] / close[days - MOMENTUM_SESSIONS] - 1
    dates = market.bars.index[days].date
    signals = [
        (_signal(symbol, day, float(c), float(m)), PROMPT_VERSION)
        for day, c, m in zip(dates, close[days], momentum, strict=True)
    ]
    return _History(market, signals, days)


@dataclass(frozen=True)
class _Baseline:
    """The numbers the pandas baseline computes, one row per signal."""

    forward_returns: dict[int, np.ndarray]
    favourable: np.ndarray
    adverse: np.ndarray
    trade_net_return: np.ndarray  # NaN: no trade or not filled


def pandas_baseline(history: _History, costs: CostModel) -> _Baseline:
    """The same numbers in plain pandas: forward returns by ``shift``, excursions by rolling
    max/min on the reversed series, brackets by one vectorised pass per session after the day."""
    bars = history.market.bars
    close, high, low, open_ = bars["close"], bars["high"], bars["low"], bars["open"]
    forward = {h: close.shift(-h) / close - 1 for h in HORIZONS}
    # The max/min over the next 20 sessions (t+1 .. t+20): a rolling window on the reversed series.
    ahead_high = high[::-1].rolling(EXCURSION_HORIZON).max()[::-1].shift(-1)
    ahead_low = low[::-1].rolling(EXCURSION_HORIZON).min()[::-1].shift(-1)

    frame = pd.DataFrame(
        [(s.action.value, s.actionable, s.entry_price, s.stop_loss, s.take_profit)
         for s, _ in history.signals],
        columns=["action", "actionable", "limit", "stop", "target"],
        index=bars.index[history.days],
    )
    sell = frame["action"] == "SELL"
    direction = pd.Series(np.where(sell, -1.0, 1.0), index=frame.index)
    at = history.days
    c, up, down = close.iloc[at], ahead_high.iloc[at], ahead_low.iloc[at]
    long_fav, long_adv = up / c - 1, down / c - 1
    short_fav, short_adv = 1 - down / c, 1 - up / c
    favourable = long_fav.where(~sell, short_fav)
    adverse = long_adv.where(~sell, short_adv)

    net = _pandas_brackets(frame, at, direction, open_, high, low, close, costs)
    return _Baseline(
        forward_returns={h: r.iloc[at].to_numpy() for h, r in forward.items()},
        favourable=favourable.to_numpy(),
        adverse=adverse.to_numpy(),
        trade_net_return=net.to_numpy(),
    )


def _pandas_brackets(
    frame: pd.DataFrame, at: np.ndarray, direction: pd.Series, open_: pd.Series, high: pd.Series,
    low: pd.Series, close: pd.Series, costs: CostModel,
) -> pd.Series:
    """Net return of each bracket (NaN: no trade, or the entry did not fill), the module
    docstring of ``trading_assets.evaluation.outcome`` in columns: session ``k`` after the day of
    every signal at once."""
    trades = frame["actionable"] & frame["action"].isin(["BUY", "SELL"])
    long = direction > 0
    limit, stop, target = frame["limit"], frame["stop"], frame["target"]
    slip = costs.slippage_bps / 10_000.0

    def ahead(series: pd.Series, k: int) -> pd.Series:
        return series.shift(-k).iloc[at]

    o1, h1, l1 = ahead(open_, 1), ahead(high, 1), ahead(low, 1)
    entry_at_open = (o1 <= limit).where(long, o1 >= limit)
    filled = trades & (entry_at_open | (l1 < limit).where(long, h1 > limit))
    raw_entry = o1.where(entry_at_open, limit)
    # On the entry's bar only the stop counts, at the stop or the (worse) entry price.
    stopped = (l1 <= stop).where(long, h1 >= stop)
    raw_exit = np.minimum(stop, raw_entry).where(long, np.maximum(stop, raw_entry)).where(stopped)
    took_profit = pd.Series(False, index=frame.index)
    done = stopped.copy()
    for k in range(2, EXIT_AFTER_SESSIONS + 1):
        ok, hk, lk = ahead(open_, k), ahead(high, k), ahead(low, k)
        stop_hit = ~done & (lk <= stop).where(long, hk >= stop)
        target_hit = ~done & ~stop_hit & (hk > target).where(long, lk < target)
        stop_gap = (ok <= stop).where(long, ok >= stop)
        target_gap = (ok >= target).where(long, ok <= target)
        raw_exit = raw_exit.where(~stop_hit, ok.where(stop_gap, stop))
        raw_exit = raw_exit.where(~target_hit, ok.where(target_gap, target))
        took_profit |= target_hit
        done |= stop_hit | target_hit
    raw_exit = raw_exit.where(done, ahead(close, EXIT_AFTER_SESSIONS))

    entry = (raw_entry * (1 + slip)).clip(upper=limit).where(long, (raw_entry * (1 - slip))
                                                             .clip(lower=limit))
    exit_ = (raw_exit * (1 - slip)).where(long, raw_exit * (1 + slip))
    # A take profit is a limit: its slippage stops at the target.
    capped = exit_.clip(lower=target).where(long, exit_.clip(upper=target))
    exit_ = capped.where(took_profit, exit_)
    net = (direction * (exit_ - entry) - 2 * costs.commission_per_share) / entry
    return net.where(filled)


def _check_agreement(outcomes: list[SignalOutcome], baseline: _Baseline) -> None:
    """The fast path and the pandas baseline give the same numbers, or no time is reported."""
    for h in HORIZONS:
        fast = np.array([o.forward_returns[h] for o in outcomes])
        assert np.array_equal(fast, baseline.forward_returns[h]), (
            f"score_history and the pandas baseline disagree on the {h}-session forward returns"
        )
    favourable = np.array([o.max_favourable_excursion for o in outcomes])
    adverse = np.array([o.max_adverse_excursion for o in outcomes])
    assert np.array_equal(favourable, baseline.favourable), "excursions disagree"
    assert np.array_equal(adverse, baseline.adverse), "excursions disagree"
    net = np.array([
        o.trade.net_return if o.trade is not None and o.trade.filled else np.nan for o in outcomes
    ], dtype=float)
    assert np.allclose(net, baseline.trade_net_return, rtol=1e-12, atol=1e-15, equal_nan=True), (
        "score_history and the pandas baseline disagree on the brackets' net returns"
    )


def scoring_figures(symbols: int, years: int) -> list[Figure]:
    """score_history over ``symbols`` x ``years`` of daily signals, beside plain pandas; and the
    scorecard of the outcomes."""
    costs = CostModel()
    histories = [build_history(f"BENCH{i:02d}", years) for i in range(symbols)]
    signals = sum(len(h.signals) for h in histories)

    started = time.perf_counter()
    scored = [
        score_history(
            h.signals, market=h.market, costs=costs, exit_after_sessions=EXIT_AFTER_SESSIONS,
            latest_closed=h.market.as_of,
        )
        for h in histories
    ]
    fast = time.perf_counter() - started

    started = time.perf_counter()
    baselines = [pandas_baseline(h, costs) for h in histories]
    plain = time.perf_counter() - started
    for outcomes, baseline in zip(scored, baselines, strict=True):
        assert all(o.scorable for o in outcomes), "every bench signal's horizon has closed"
        _check_agreement(outcomes, baseline)

    first = histories[0]
    sample = first.signals[:ONE_BY_ONE_SAMPLE]
    started = time.perf_counter()
    for signal, version in sample:
        score_signal(
            signal, prompt_version=version, market=first.market, costs=costs,
            exit_after_sessions=EXIT_AFTER_SESSIONS, latest_closed=first.market.as_of,
        )
    one_by_one = (time.perf_counter() - started) / len(sample)

    outcomes = [o for per_symbol in scored for o in per_symbol]
    trades = sum(o.trade is not None for o in outcomes)
    filled = sum(o.trade is not None and o.trade.filled for o in outcomes)
    figures = [Figure(
        f"score {symbols} symbols x {years} years of daily signals (score_history)",
        fast,
        "s",
        "plain pandas, numbers only: forward returns by shift, excursions by rolling max/min on "
        "the reversed series, brackets one vectorised pass per session after the day",
        plain,
        f"<= {SCORING_TARGET_SECONDS:g} s",
        fast <= SCORING_TARGET_SECONDS,
        f"{signals:,} signals ({trades:,} brackets, {filled:,} filled), each a SignalOutcome "
        "with its notes and dates; the baseline builds no models; both agree on every forward "
        "return, excursion and net return; score_signal one signal at a time: "
        f"{one_by_one * 1e3:.2f} ms each on {len(sample)}, about {one_by_one * signals:.0f} s "
        "for all",
    )]
    figures.append(scorecard_figure(outcomes, costs, fast))
    return figures


def scorecard_figure(outcomes: list[SignalOutcome], costs: CostModel, scoring: float) -> Figure:
    name = f"scorecard of {len(outcomes):,} outcomes, {SCORECARD_RESAMPLES} bootstrap resamples"
    target = f"<= {SCORECARD_TARGET_SECONDS:g} s"
    try:
        from trading_assets.evaluation.scorecard import build_scorecard
    except ImportError as missing:
        return skipped(name, "s", target, f"no scorecard to time ({missing})")
    from trading_assets.execution.rules import RiskLimits

    started = time.perf_counter()
    card = build_scorecard(
        outcomes, limits=RiskLimits(), costs=costs, starting_cash=100_000.0,
        resamples=SCORECARD_RESAMPLES,
    )
    seconds = time.perf_counter() - started
    assert card.scored == len(outcomes), "the scorecard counts every scored outcome"
    return Figure(
        name, seconds, "s", "scoring the same outcomes (above)", scoring, target,
        seconds <= SCORECARD_TARGET_SECONDS,
        f"block bootstrap over {len({o.as_of for o in outcomes}):,} signal days, one group",
    )
