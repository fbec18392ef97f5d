import datetime as dt
import json

import pytest
from pydantic import ValidationError

from trading_assets.analysis.answer import AnswerError, build_signal, parse_answer
from trading_assets.analysis.offline import OFFLINE_MODEL, analyse
from trading_assets.analysis.prompt import PROMPT_VERSION, build_prompt
from trading_assets.models import Action, ConfidenceLevel, LlmAnalysis, TradingSignal

DAY = dt.date(2025, 6, 2)
BASE = dict(
    symbol="TSLA",
    as_of=DAY,
    reasoning="trend up",
    key_factors=["close above SMA 50"],
    trend="BULLISH",
    provider="offline",
    model_name=OFFLINE_MODEL,
    position_size_pct=5,
)


def _signal(**overrides: object) -> TradingSignal:
    fields = dict(
        BASE,
        action="BUY",
        confidence_score=70,
        confidence_level="MEDIUM",
        entry_price=100,
        stop_loss=95,
        take_profit=110,
        risk_reward_ratio=2.0,
    )
    fields.update(overrides)
    return TradingSignal(**fields)


def test_a_consistent_buy_is_accepted() -> None:
    signal = _signal(actionable=True)
    assert signal.action is Action.BUY and signal.confidence_level is ConfidenceLevel.MEDIUM


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"confidence_level": "HIGH"}, "does not match score 70"),
        ({"stop_loss": 101}, "stop_loss < entry_price < take_profit"),
        ({"take_profit": 99}, "stop_loss < entry_price < take_profit"),
        ({"action": "SELL"}, "take_profit < entry_price < stop_loss"),
        ({"stop_loss": None}, "needs stop_loss"),
        ({"risk_reward_ratio": 3.0}, "does not match the prices"),
        ({"support": 120, "resistance": 110}, "support 120.0 is above resistance"),
        ({"confidence_score": 40, "confidence_level": "LOW", "actionable": True}, "threshold"),
        ({"confidence_score": 101}, "less than or equal to 100"),
        ({"entry_price": -1}, "greater than 0"),
    ],
)
def test_invalid_combinations_are_rejected(overrides: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _signal(**overrides)


def test_hold_cannot_be_actionable() -> None:
    with pytest.raises(ValidationError, match="HOLD signal cannot be actionable"):
        TradingSignal(**BASE, action="HOLD", confidence_score=40, confidence_level="LOW",
                      actionable=True)


def _analysis(response: str) -> LlmAnalysis:
    return LlmAnalysis(symbol="TSLA", as_of=DAY, provider="offline", model_name=OFFLINE_MODEL,
                       prompt_version=PROMPT_VERSION, prompt="p", image_sha256={},
                       response=response)


ANSWER = {
    "action": "BUY", "confidence_score": 82, "reasoning": "breakout", "key_factors": ["MACD up"],
    "trend": "BULLISH", "support": 90, "resistance": 120, "entry_price": 100, "stop_loss": 96,
    "take_profit": 112, "position_size_pct": 5,
}


def test_build_signal_derives_level_risk_reward_and_actionable() -> None:
    signal = build_signal(_analysis(json.dumps(ANSWER)), min_confidence=50, symbol="TSLA",
                          as_of=DAY)
    assert signal.confidence_level is ConfidenceLevel.HIGH
    assert signal.risk_reward_ratio == pytest.approx(3.0)
    assert signal.actionable
    below = build_signal(_analysis(json.dumps(ANSWER)), min_confidence=90, symbol="TSLA",
                         as_of=DAY)
    assert not below.actionable


def test_fenced_json_is_accepted() -> None:
    assert parse_answer("```json\n" + json.dumps(ANSWER) + "\n```").action is Action.BUY


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty answer"),
        ("I cannot help with that.", "not JSON"),
        ("[1, 2]", "expected an object"),
        (json.dumps({**ANSWER, "action": "MAYBE"}), "action"),
        (json.dumps({k: v for k, v in ANSWER.items() if k != "trend"}), "trend: Field required"),
        (json.dumps({**ANSWER, "stop_loss": 130}), "stop_loss < entry_price < take_profit"),
    ],
)
def test_bad_answers_fail_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(AnswerError, match=message):
        build_signal(_analysis(text), min_confidence=50, symbol="TSLA", as_of=DAY)


BULL = {"close": 110.0, "sma_20": 105.0, "sma_50": 100.0, "sma_200": 90.0, "rsi_14": 60.0,
        "macd_hist": 0.5, "low_20": 101.0, "high_20": 112.0}


def test_offline_analyst_buys_a_clear_uptrend_with_a_valid_bracket() -> None:
    answer = analyse(BULL)
    assert answer.action is Action.BUY
    assert answer.stop_loss < answer.entry_price < answer.take_profit
    assert answer.take_profit - answer.entry_price == pytest.approx(
        2 * (answer.entry_price - answer.stop_loss), abs=0.02)
    signal = build_signal(_analysis(answer.model_dump_json()), min_confidence=50,
                          symbol="TSLA", as_of=DAY)
    assert signal.actionable


def test_offline_analyst_sells_a_clear_downtrend_and_holds_when_mixed() -> None:
    bear = {**BULL, "close": 80.0, "sma_20": 85.0, "macd_hist": -0.5, "sma_50": 88.0,
            "low_20": 78.0, "high_20": 90.0}
    assert analyse(bear).action is Action.SELL
    mixed = {**BULL, "close": 102.0, "macd_hist": -0.1}
    assert analyse(mixed).action is Action.HOLD
    assert analyse(mixed).entry_price is None


def test_offline_analyst_is_deterministic_and_notes_short_history() -> None:
    short = {**BULL, "sma_200": None, "rsi_14": None}
    assert analyse(short) == analyse(short)
    assert any("not enough history" in f for f in analyse(short).key_factors)


@pytest.mark.parametrize(
    ("indicators", "bulls", "bears", "votes", "rsi", "net", "trend"),
    [
        # 1 bullish, 3 bearish (-2), oversold RSI +1: net -1, so NEUTRAL and HOLD.
        ({**BULL, "close": 101.0, "sma_20": 102.0, "sma_50": 89.0, "macd_hist": -0.2,
          "rsi_14": 25.0}, 1, 3, -2, "RSI 25.0 oversold counts +1", -1, "NEUTRAL"),
        ({**BULL, "rsi_14": 75.0}, 4, 0, 4, "RSI 75.0 overbought counts -1", 3, "BULLISH"),
        (BULL, 4, 0, 4, None, 4, "BULLISH"),
    ],
)
def test_offline_reasoning_adds_up_and_says_what_the_trend_is_based_on(
    indicators: dict, bulls: int, bears: int, votes: int, rsi: str | None, net: int, trend: str
) -> None:
    answer = analyse(indicators)
    text = answer.reasoning
    assert f"{bulls} bullish and {bears} bearish trend votes make {votes:+d}" in text
    if rsi is None:
        assert "RSI" not in text
    else:
        assert f"{rsi}: net {net:+d}" in text
    assert answer.trend.value == trend and f"The trend is {trend} by that net score" in text


def test_prompt_carries_the_version_indicators_and_schema() -> None:
    prompt = build_prompt("TSLA", DAY, {**BULL, "sma_200": None})
    assert "TSLA" in prompt and "2025-06-02" in prompt
    assert "SMA 50: 100" in prompt and "SMA 200: n/a" in prompt
    assert '"confidence_score"' in prompt
    assert PROMPT_VERSION == "signal-v1"
