"""The scorecard's hit rates and edge on real GOOG and IBM bars agree with a plain pandas reading.

A momentum rule decides from past closes only; pandas computes the same statistics with
``shift`` on the CSV files, independently of the evaluator's code.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from trading_assets.evaluation.models import HORIZONS
from trading_assets.evaluation.outcome import score_history
from trading_assets.evaluation.scorecard import build_scorecard
from trading_assets.execution.costs import CostModel
from trading_assets.execution.rules import RiskLimits
from trading_assets.models import Action, MarketData, TradingSignal

REAL = Path(__file__).resolve().parents[1] / "data" / "real"
START, END = "2008-01-02", "2012-10-31"  # every horizon closes before the files end (2013-03-01)


def _bars(symbol: str) -> pd.DataFrame:
    return pd.read_csv(REAL / f"{symbol}.csv", parse_dates=["date"], index_col="date")


def _action(closes: pd.Series, i: int) -> Action:
    change = closes.iloc[i] / closes.iloc[i - 20] - 1
    return Action.BUY if change > 0.03 else Action.SELL if change < -0.03 else Action.HOLD


def _signal(symbol: str, day: dt.date, close: float, action: Action) -> TradingSignal:
    prices: dict[str, float | None] = {"entry_price": None, "stop_loss": None, "take_profit": None}
    if action is not Action.HOLD:
        sign = 1 if action is Action.BUY else -1
        prices = {"entry_price": close, "stop_loss": close * (1 - 0.02 * sign),
                  "take_profit": close * (1 + 0.04 * sign)}
    return TradingSignal(
        symbol=symbol, as_of=day, action=action, confidence_score=70, confidence_level="MEDIUM",
        reasoning="20-session momentum", key_factors=["momentum"], trend="NEUTRAL",
        provider="test", model_name="momentum", position_size_pct=10,
        actionable=action is not Action.HOLD, **prices,
    )


def test_hit_rate_mean_and_edge_match_pandas_on_real_bars() -> None:
    outcomes, frames = [], []
    for symbol in ("GOOG", "IBM"):
        bars = _bars(symbol)
        closes = bars["close"]
        days = bars.loc[START:END].index
        signals = [
            (_signal(symbol, ts.date(), float(closes.loc[ts]),
                     _action(closes, closes.index.get_loc(ts))), "v1")
            for ts in days
        ]
        market = MarketData(symbol=symbol, as_of=bars.index[-1].date(), source="csv",
                            source_detail=symbol, bars=bars)
        outcomes += score_history(signals, market=market, costs=CostModel(),
                                  exit_after_sessions=20, latest_closed=market.as_of)
        frame = pd.DataFrame({"action": [s.action.value for s, _ in signals]}, index=days)
        for h in HORIZONS:
            frame[h] = (closes.shift(-h) / closes - 1).loc[days]
        frames.append(frame)
    expected = pd.concat(frames)
    card = build_scorecard(outcomes, limits=RiskLimits(), costs=CostModel(),
                           starting_cash=100_000, resamples=200)
    assert card.scored == len(expected)
    actions = {a.action.value: a for a in card.overall.actions}
    directional = expected[expected["action"] != "HOLD"]
    for h in HORIZONS:
        right = ((directional["action"] == "BUY") & (directional[h] > 0)) | (
            (directional["action"] == "SELL") & (directional[h] < 0))
        assert card.overall.hit_rate[h].estimate == pytest.approx(right.mean(), abs=1e-12)
        everyone = expected[h].mean()
        assert card.overall.unconditional_mean[h] == pytest.approx(everyone, rel=1e-9)
        for action in ("BUY", "SELL", "HOLD"):
            mean = expected.loc[expected["action"] == action, h].mean()
            assert actions[action].mean_return[h].estimate == pytest.approx(mean, rel=1e-9)
            assert actions[action].edge[h].estimate == pytest.approx(mean - everyone, rel=1e-9)
    assert {a: s.count for a, s in actions.items()} == expected["action"].value_counts().to_dict()
