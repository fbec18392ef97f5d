"""The scorecard on hand-built outcomes whose numbers are known, and its block bootstrap."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pytest

from trading_assets.calendar import sessions_between
from trading_assets.evaluation.models import (
    HORIZONS,
    ActionStats,
    GroupScore,
    Scorecard,
    SignalOutcome,
    TradeOutcome,
)
from trading_assets.evaluation.report import format_scorecard
from trading_assets.evaluation.scorecard import build_scorecard
from trading_assets.evaluation.stats import bootstrap_mean, curve_stats
from trading_assets.execution.costs import CostModel
from trading_assets.execution.rules import RiskLimits
from trading_assets.models import Action, OrderSide, confidence_level_for

COSTS = CostModel(commission_per_share=0.005, commission_min=1.0, slippage_bps=5)
DAYS = [ts.date() for ts in sessions_between(dt.date(2023, 1, 3), dt.date(2024, 12, 31))]


def outcome(
    symbol: str, day: dt.date, action: Action, r: float | dict[int, float] | None = 0.0, *,
    score: float = 60, close: float = 100.0, trade: TradeOutcome | None = None,
    pct: float = 5.0, model: str = "m1", provider: str = "prov", prompt: str = "v1",
    scorable: bool = True,
) -> SignalOutcome:
    """An outcome; ``r`` a float is the return at every horizon."""
    returns = {} if r is None or not scorable else (
        dict(r) if isinstance(r, dict) else {h: r for h in HORIZONS}
    )
    return SignalOutcome(
        symbol=symbol, as_of=day, scorable=scorable,
        status="scored" if scorable else "not yet scorable: needs bars",
        horizon_end=day + dt.timedelta(days=30), source="synthetic", action=action,
        confidence_score=score, confidence_level=confidence_level_for(score),
        actionable=action is not Action.HOLD and trade is not None, position_size_pct=pct,
        provider=provider, model_name=model, prompt_version=prompt, close=close,
        forward_returns=returns, trade=trade, costs=COSTS,
    )


def trade(
    side: OrderSide, *, filled: bool = True, net: float = 0.0, r_multiple: float = 0.0,
    limit: float = 100.0, entry: dt.date | None = None, entry_price: float | None = None,
    exit_price: float | None = None, path: list[tuple[dt.date, float]] | None = None,
    reason: str = "time_exit", spanned: bool = False,
) -> TradeOutcome:
    stop, target = (limit * 0.97, limit * 1.06) if side is OrderSide.BUY else (
        limit * 1.03, limit * 0.94)
    if not filled:
        return TradeOutcome(side=side, limit_price=limit, stop_loss=stop, take_profit=target,
                            filled=False, entry_note="not filled")
    path = path or [(entry or DAYS[1], limit)]
    return TradeOutcome(
        side=side, limit_price=limit, stop_loss=stop, take_profit=target, filled=True,
        entry_note="filled", entry_date=path[0][0], entry_price=entry_price or limit,
        exit_date=path[-1][0], exit_price=exit_price or path[-1][1], exit_reason=reason,
        spanned_stop_and_target=spanned, sessions_held=len(path), net_return=net,
        r_multiple=r_multiple, path_dates=[d for d, _ in path], path_closes=[c for _, c in path],
    )


def card_of(outcomes: list[SignalOutcome], **kwargs: Any) -> Scorecard:
    kwargs = {"limits": RiskLimits(), "costs": COSTS, "starting_cash": 100_000.0,
              "resamples": 500, **kwargs}
    return build_scorecard(outcomes, **kwargs)


def action_stats(group: GroupScore, action: Action) -> ActionStats:
    return next(a for a in group.actions if a.action is action)


# -- hit rates and edge -------------------------------------------------------------------------

HAND = [  # (action, 1-session return); 5 sessions is twice that, 20 the opposite
    (Action.BUY, 0.02), (Action.BUY, -0.01), (Action.BUY, 0.0), (Action.SELL, -0.03),
    (Action.SELL, 0.01), (Action.HOLD, 0.05), (Action.HOLD, -0.02),
]


def hand_outcomes() -> list[SignalOutcome]:
    return [
        outcome("AAA", DAYS[i], a, {1: r, 5: 2 * r, 20: -r}) for i, (a, r) in enumerate(HAND)
    ]


def test_hit_rates_and_edge_are_exact() -> None:
    card = card_of(hand_outcomes())
    all_ = card.overall
    # BUY right when up, SELL when down; 0.0 is a miss; HOLD does not count.
    assert all_.hit_rate[1].estimate == pytest.approx(2 / 5)
    assert all_.hit_rate[1].n == 5
    assert all_.hit_rate[20].estimate == pytest.approx(2 / 5)  # BUY -0.01 -> +0.01, SELL +0.01
    buy, sell, hold = (action_stats(all_, a) for a in (Action.BUY, Action.SELL, Action.HOLD))
    assert (buy.count, sell.count, hold.count) == (3, 2, 2)
    assert all_.counts == {"BUY": 3, "SELL": 2, "HOLD": 2}
    mean_all = sum(r for _, r in HAND) / 7
    assert all_.unconditional_mean[1] == pytest.approx(mean_all)
    assert all_.unconditional_mean[5] == pytest.approx(2 * mean_all)
    assert buy.mean_return[1].estimate == pytest.approx(0.01 / 3)
    assert buy.edge[1].estimate == pytest.approx(0.01 / 3 - mean_all)
    assert buy.edge[5].estimate == pytest.approx(2 * (0.01 / 3 - mean_all))
    assert buy.edge[20].estimate == pytest.approx(-(0.01 / 3 - mean_all))
    assert sell.edge[1].estimate == pytest.approx(-0.01 - mean_all)
    assert hold.edge[1].estimate == pytest.approx(0.015 - mean_all)
    assert buy.hit_rate[1].estimate == pytest.approx(1 / 3)
    assert sell.hit_rate[1].estimate == pytest.approx(1 / 2)
    assert sell.hit_rate[20].estimate == pytest.approx(1 / 2)
    assert hold.hit_rate == {}
    # Seven days are enough blocks at 1 session, not at 5 (3 blocks of 5 need 15 days).
    assert buy.edge[1].low is not None and buy.edge[1].low <= buy.edge[1].estimate
    assert buy.edge[5].low is None and buy.edge[5].high is None
    assert card.block_sessions == {1: 2, 5: 10, 20: 40}  # twice the horizon


def test_only_scorable_outcomes_are_scored() -> None:
    outcomes = [*hand_outcomes(), outcome("BBB", DAYS[40], Action.BUY, scorable=False)]
    card = card_of(outcomes)
    assert (card.scored, card.not_yet_scorable) == (7, 1)
    assert (card.start, card.end, card.symbols) == (DAYS[0], DAYS[6], ["AAA"])


def test_too_few_values_give_no_interval() -> None:
    card = card_of([outcome("AAA", DAYS[0], Action.BUY, 0.01), outcome("AAA", DAYS[1],
                                                                         Action.HOLD, 0.0)])
    buy = action_stats(card.overall, Action.BUY)
    assert buy.mean_return[1].estimate == pytest.approx(0.01)
    assert (buy.mean_return[1].low, buy.mean_return[1].high, buy.mean_return[1].n) == (
        None, None, 1)
    assert card.overall.verdict.startswith("too few signals")


def test_empty_input_builds() -> None:
    for outcomes in ([], [outcome("AAA", DAYS[0], Action.BUY, scorable=False)]):
        card = card_of(outcomes)
        assert card.scored == 0 and card.not_yet_scorable == len(outcomes)
        assert card.start is None and card.end is None and card.symbols == []
        assert card.equity_curve is None
        assert card.overall.verdict.startswith("nothing to score yet")
        assert card.overall.hit_rate[5].estimate is None
        assert "no scored signals yet" in format_scorecard(card)


# -- calibration --------------------------------------------------------------------------------

def test_calibration_buckets() -> None:
    rows = [  # score, action, return
        (5, Action.BUY, 0.01), (45, Action.SELL, 0.01), (55, Action.BUY, 0.02),
        (59.9, Action.HOLD, 0.02), (85, Action.SELL, -0.01), (99.5, Action.BUY, -0.01),
        (100, Action.BUY, 0.03),
    ]
    outcomes = [outcome("AAA", DAYS[i], a, r, score=s) for i, (s, a, r) in enumerate(rows)]
    calibration = {(r.kind, r.bucket): r for r in card_of(outcomes).overall.calibration}
    assert [b for k, b in calibration if k == "level"] == ["LOW", "MEDIUM", "HIGH"]
    assert [b for k, b in calibration if k == "decile"] == [
        "0-10", "10-20", "20-30", "30-40", "40-50", "50-60", "60-70", "70-80", "80-90", "90-100"
    ]
    low, medium, high = (calibration["level", x] for x in ("LOW", "MEDIUM", "HIGH"))
    assert (low.count, medium.count, high.count) == (2, 2, 3)
    assert low.mean_score == pytest.approx(25)
    assert high.mean_score == pytest.approx((85 + 99.5 + 100) / 3)
    assert low.hit_rate[1].estimate == pytest.approx(1 / 2)  # BUY up, SELL up
    assert medium.hit_rate[1].estimate == pytest.approx(1.0)  # the HOLD does not count
    assert medium.hit_rate[1].n == 1
    assert high.hit_rate[1].estimate == pytest.approx(2 / 3)
    top = calibration["decile", "90-100"]  # 100 belongs to the last decile
    assert (top.count, top.hit_rate[1].estimate) == (2, pytest.approx(1 / 2))
    assert calibration["decile", "50-60"].count == 2
    empty = calibration["decile", "20-30"]
    assert (empty.count, empty.mean_score, empty.hit_rate[1].estimate) == (0, None, None)


# -- trades -------------------------------------------------------------------------------------

def test_trade_stats() -> None:
    b, s = OrderSide.BUY, OrderSide.SELL
    outcomes = [
        outcome("AAA", DAYS[0], Action.BUY, trade=trade(b, net=0.04, r_multiple=2.0,
                                                         reason="take_profit",
                                                         path=[(DAYS[1], 100), (DAYS[2], 104)])),
        outcome("AAA", DAYS[1], Action.BUY, trade=trade(b, net=-0.02, r_multiple=-1.0,
                                                         reason="stop_loss", spanned=True)),
        outcome("BBB", DAYS[2], Action.SELL, trade=trade(s, net=0.01, r_multiple=0.5)),
        outcome("BBB", DAYS[3], Action.SELL, trade=trade(s, net=-0.01, r_multiple=-0.5,
                                                          reason="stop_loss")),
        outcome("BBB", DAYS[4], Action.BUY, trade=trade(b, filled=False)),
        outcome("AAA", DAYS[5], Action.HOLD),
        outcome("AAA", DAYS[6], Action.BUY),  # not actionable: no bracket
    ]
    t = card_of(outcomes).overall.trades
    assert (t.signals, t.filled) == (5, 4)
    assert t.win_rate.estimate == pytest.approx(0.5) and t.win_rate.n == 4
    assert t.expectancy_r.estimate == pytest.approx((2.0 - 1.0 + 0.5 - 0.5) / 4)
    assert t.profit_factor == pytest.approx((0.04 + 0.01) / (0.02 + 0.01))
    assert t.average_sessions_held == pytest.approx((2 + 1 + 1 + 1) / 4)
    assert t.spanned_stop_and_target == 1
    assert t.exits == {"stop_loss": 2, "take_profit": 1, "time_exit": 1}

    winners = [outcomes[0], outcomes[2]]
    assert card_of(winners).overall.trades.profit_factor is None  # no losses


# -- equity curve -------------------------------------------------------------------------------

def test_equity_curve_arithmetic() -> None:
    d = DAYS[100:105]
    b, s = OrderSide.BUY, OrderSide.SELL
    limits = RiskLimits(max_position_pct=10, max_notional_per_order=25_000,
                        max_position_notional=8_000)
    outcomes = [
        # 5 % of 100,000 at 100 -> 50 shares; 50 x 0.005 = 0.25 < the 1.00 minimum commission.
        outcome("AAA", d[0], Action.BUY, close=100.0, pct=5, trade=trade(
            b, limit=100.0, entry_price=100.05, exit_price=103.0, reason="take_profit",
            path=[(d[1], 101.0), (d[2], 102.0), (d[3], 103.5)])),
        outcome("CCC", d[0], Action.HOLD, close=10.0),
        outcome("AAA", d[1], Action.HOLD, close=101.0),
        # 50 % capped to 10 % of the previous close's 100,046.50 -> 1000 shares at 10, capped
        # by the 8,000 max position notional to 800; commission 800 x 0.005 = 4.00.
        outcome("CCC", d[1], Action.BUY, close=10.2, pct=50, trade=trade(
            b, limit=10.0, entry_price=10.0, exit_price=9.5, reason="stop_loss",
            path=[(d[2], 10.1), (d[3], 9.8), (d[4], 9.6)])),
        # A SELL opens no short; an unfilled BUY opens nothing.
        outcome("AAA", d[2], Action.SELL, close=102.0, trade=trade(
            s, limit=102.0, path=[(d[3], 103.5), (d[4], 104.0)])),
        outcome("CCC", d[2], Action.HOLD, close=10.1),
        outcome("AAA", d[3], Action.BUY, close=103.5, trade=trade(b, limit=103.5, filled=False)),
        # CCC has no outcome on d[3] and nobody on d[4]: carried forward.
    ]
    curve = card_of(outcomes, limits=limits).equity_curve
    assert curve.dates == list(d)
    cash1 = 100_000 - 50 * 100.05 - 1.0
    cash2 = cash1 - 800 * 10.0 - 4.0
    cash3 = cash2 + 50 * 103.0 - 1.0
    cash4 = cash3 + 800 * 9.5 - 4.0
    expected = [
        100_000.0, cash1 + 50 * 101.0, cash2 + 50 * 102.0 + 800 * 10.1, cash3 + 800 * 9.8, cash4,
    ]
    assert curve.strategy == pytest.approx(expected, abs=1e-9)
    assert expected[-1] == pytest.approx(99_737.5)
    # Buy-and-hold: 50,000 in each symbol at the first day's closes (500 AAA, 5000 CCC).
    hold = [
        100_000.0, 500 * 101.0 + 5000 * 10.2, 500 * 102.0 + 5000 * 10.1,
        500 * 103.5 + 5000 * 10.1, 500 * 103.5 + 5000 * 10.1,
    ]
    assert curve.buy_and_hold == pytest.approx(hold)
    for values, stats in ((expected, curve.strategy_stats), (hold, curve.buy_and_hold_stats)):
        v = np.array(values)
        daily = np.diff(v) / v[:-1]
        assert stats.total_return == pytest.approx(v[-1] / v[0] - 1)
        assert stats.annualised_sharpe == pytest.approx(
            daily.mean() / daily.std(ddof=1) * math.sqrt(252)
        )
        assert stats.max_drawdown == pytest.approx(np.min(v / np.maximum.accumulate(v) - 1))
    assert curve.strategy_stats.max_drawdown == pytest.approx(99_737.5 / 100_172.5 - 1)


def test_fixed_sizing_and_per_order_cap() -> None:
    d = DAYS[200:203]
    entry = trade(OrderSide.BUY, limit=50.0, path=[(d[1], 50.0), (d[2], 51.0)])
    outcomes = [outcome("AAA", d[0], Action.BUY, close=50.0, pct=100, trade=entry)]
    fixed = card_of(outcomes, limits=RiskLimits(sizing="fixed", fixed_shares=7)).equity_curve
    assert fixed.strategy[-1] == pytest.approx(100_000 + 7 * (51.0 - 50.0) - 2 * 1.0)
    # 10 % of 100,000 at 50 is 200 shares; a 2,500 per-order cap leaves 50.
    capped = card_of(outcomes, limits=RiskLimits(max_notional_per_order=2_500)).equity_curve
    assert capped.strategy[1] == pytest.approx(100_000 - 1.0)  # marked at the entry's close
    assert capped.strategy[-1] == pytest.approx(100_000 + 50 * 1.0 - 2 * 1.0)


def test_curve_stats_edge_cases() -> None:
    flat = curve_stats([100.0, 100.0, 100.0])
    assert (flat.total_return, flat.annualised_sharpe, flat.max_drawdown) == (0.0, None, 0.0)
    assert curve_stats([100.0, 110.0]).annualised_sharpe is None  # one return
    rising = curve_stats([100.0, 101.0, 103.0, 104.0])
    assert rising.max_drawdown == 0.0 and rising.annualised_sharpe > 0
    assert curve_stats([100.0, 120.0, 90.0, 130.0]).max_drawdown == pytest.approx(-0.25)


# -- the block bootstrap ------------------------------------------------------------------------

def overlapping_sums(seed: int, days: int, h: int) -> np.ndarray:
    daily = np.random.default_rng(seed).normal(0, 0.01, days + h)
    return np.convolve(daily, np.ones(h), mode="valid")[:days]  # h-day returns, overlapping


def test_block_bootstrap_is_reproducible_and_wider_for_overlapping_returns() -> None:
    h, days = 20, 1000
    x = overlapping_sums(3, days, h)
    index = np.arange(days)
    block = bootstrap_mean(x, index, block=h, resamples=2000, seed=11)
    assert block == bootstrap_mean(x, index, block=h, resamples=2000, seed=11)
    assert block != bootstrap_mean(x, index, block=h, resamples=2000, seed=12)
    iid = bootstrap_mean(x, index, block=1, resamples=2000, seed=11)
    assert block.estimate == iid.estimate == pytest.approx(x.mean())
    # Neighbouring 20-day returns share 19 days: the iid interval is about sqrt(20) too narrow.
    ratio = (block.high - block.low) / (iid.high - iid.low)
    assert ratio > 2.5, ratio
    # On independent values blocks change little.
    white = np.random.default_rng(4).normal(0, 0.01, days)
    ratio_white = (lambda a, b: (a.high - a.low) / (b.high - b.low))(
        bootstrap_mean(white, index, block=h, resamples=2000, seed=11),
        bootstrap_mean(white, index, block=1, resamples=2000, seed=11),
    )
    assert 0.7 < ratio_white < 1.3, ratio_white


def test_block_bootstrap_interval_covers_the_truth_on_overlapping_returns() -> None:
    # The true mean is 0: the block interval should cover it in most samples, the iid one
    # visibly less often.
    h, days = 5, 400
    covered = {1: 0, h: 0}
    for seed in range(100):
        x = overlapping_sums(seed, days, h)
        for block in covered:
            iv = bootstrap_mean(x, np.arange(days), block=block, resamples=300, seed=seed)
            covered[block] += iv.low <= 0 <= iv.high
    assert covered[h] >= 80, covered
    assert covered[1] < covered[h] - 10, covered


def test_a_day_resamples_all_its_outcomes_together() -> None:
    # Two symbols that move together on each day: resampling days (not outcomes) keeps them
    # together, so the interval is as wide as one symbol's, not sqrt(2) narrower.
    rng = np.random.default_rng(5)
    daily = rng.normal(0, 0.01, 500)
    pair = np.repeat(daily, 2)
    one = bootstrap_mean(daily, np.arange(500), block=1, resamples=2000, seed=1)
    both = bootstrap_mean(pair, np.repeat(np.arange(500), 2), block=1, resamples=2000, seed=1)
    assert (both.high - both.low) == pytest.approx(one.high - one.low, rel=1e-9)


def test_scorecard_repeats_exactly_with_its_seed() -> None:
    outcomes = two_model_outcomes()
    first, again = card_of(outcomes), card_of(outcomes)
    assert first.model_dump() == again.model_dump()
    other = card_of(outcomes, seed=7)
    assert other.overall.hit_rate[5].estimate == first.overall.hit_rate[5].estimate
    assert other.overall.hit_rate[5].low != first.overall.hit_rate[5].low
    assert (first.bootstrap_resamples, first.bootstrap_seed, other.bootstrap_seed) == (
        500, 20061, 7)


# -- groups and comparisons ---------------------------------------------------------------------

def two_model_outcomes(days: int = 200) -> list[SignalOutcome]:
    """'oracle' knows the 5-session return's sign, 'twin' says exactly the same, 'coin' guesses."""
    rng = np.random.default_rng(42)
    outcomes = []
    for symbol in ("AAA", "BBB"):
        closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, days + 20)))
        for t in range(days):
            r = {h: float(closes[t + h] / closes[t] - 1) for h in HORIZONS}
            knows = Action.BUY if r[5] > 0 else Action.SELL
            guess = (Action.BUY, Action.SELL, Action.HOLD)[int(rng.integers(0, 3))]
            for model, action in (("oracle", knows), ("twin", knows), ("coin", guess)):
                outcomes.append(outcome(symbol, DAYS[t], action, r, model=model,
                                        close=float(closes[t])))
    return outcomes


def test_groups_and_comparisons() -> None:
    card = card_of(two_model_outcomes())
    # One provider and one prompt: those groups would equal "all", so there are none.
    assert [(g.by, g.key) for g in card.groups] == [
        ("model", "coin"), ("model", "oracle"), ("model", "twin")
    ]
    groups = {g.key: g for g in card.groups}
    assert groups["oracle"].outcomes == 400 and groups["oracle"].days == 200
    assert groups["oracle"].hit_rate[5].estimate == 1.0
    assert groups["oracle"].verdict.startswith("significant positive edge")
    assert card.overall.outcomes == 1200

    pairs = {(c.first, c.second): c for c in card.comparisons}
    assert set(pairs) == {("coin", "oracle"), ("coin", "twin"), ("oracle", "twin")}
    better = pairs["coin", "oracle"]
    assert better.shared == 400
    assert better.difference[5].high < 0
    assert better.verdict.startswith("oracle better than coin at 5 sessions")
    same = pairs["oracle", "twin"]
    assert same.difference[5].estimate == 0.0
    assert same.verdict.startswith("no significant difference")

    text = format_scorecard(card, by="model")
    assert "model oracle" in text and "oracle better than coin" in text
    assert "model coin" not in format_scorecard(card)


def test_comparisons_pair_on_shared_symbol_days_only() -> None:
    days = 60
    outcomes = [outcome("AAA", DAYS[t], Action.BUY, 0.01, model="a") for t in range(days)]
    # 'b' only on the even days, and a second symbol 'a' never scored.
    outcomes += [outcome("AAA", DAYS[t], Action.SELL, 0.01, model="b") for t in range(0, days, 2)]
    outcomes += [outcome("BBB", DAYS[t], Action.SELL, 0.01, model="b") for t in range(days)]
    comparison = card_of(outcomes).comparisons[0]
    assert comparison.shared == 30
    assert comparison.difference[1].estimate == pytest.approx(0.02)
    assert comparison.difference[1].n == 30


def test_unknown_grouping_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot group by"):
        card_of([], by=("provider", "colour"))


def test_report_shows_the_numbers() -> None:
    card = card_of(two_model_outcomes())
    text = format_scorecard(card)
    buy5 = action_stats(card.overall, Action.BUY).edge[5]
    assert f"{buy5.estimate * 100:+.2f}% [{buy5.low * 100:+.2f}, {buy5.high * 100:+.2f}]" in text
    for needle in ("Scorecard: ", "not yet scorable 0", "BUY+SELL hit n=1057", "calibration",
                   "trades (SELL as hypothetical shorts)", "buy and hold", "verdict: "):
        assert needle in text
    assert len(max(text.splitlines(), key=len)) <= 100
    with pytest.raises(ValueError):
        format_scorecard(card, by="colour")
