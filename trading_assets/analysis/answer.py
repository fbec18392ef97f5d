"""The answer an analyst returns, and its conversion into a validated TradingSignal."""

from __future__ import annotations

import datetime as dt
import json

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trading_assets.models import (
    Action,
    LlmAnalysis,
    TradingSignal,
    Trend,
    confidence_level_for,
)


class SignalAnswer(BaseModel):
    """What the model is asked to answer: the JSON schema sent with every prompt."""

    model_config = ConfigDict(extra="forbid")

    action: Action
    confidence_score: float = Field(ge=0, le=100)
    reasoning: str = Field(min_length=1)
    key_factors: list[str] = Field(min_length=1, max_length=8)
    trend: Trend
    support: float | None = Field(gt=0)
    resistance: float | None = Field(gt=0)
    entry_price: float | None = Field(gt=0)
    stop_loss: float | None = Field(gt=0)
    take_profit: float | None = Field(gt=0)
    position_size_pct: float = Field(ge=0, le=100)


class AnswerError(ValueError):
    """The analyst's answer is not a valid signal; the message says which field and why."""


def _strip_fences(text: str) -> str:
    body = text.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.rsplit("```", 1)[0]
    return body.strip()


def parse_answer(text: str) -> SignalAnswer:
    body = _strip_fences(text)
    if not body:
        raise AnswerError("the analyst returned an empty answer")
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise AnswerError(f"the answer is not JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(data, dict):
        raise AnswerError(f"the answer is JSON {type(data).__name__}, expected an object")
    try:
        return SignalAnswer.model_validate(data)
    except ValidationError as exc:
        raise AnswerError(_describe(exc)) from exc


def _describe(exc: ValidationError) -> str:
    problems = [f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in exc.errors()]
    return "the answer does not match the signal schema: " + "; ".join(problems)


def build_signal(
    analysis: LlmAnalysis, *, min_confidence: float, symbol: str, as_of: dt.date
) -> TradingSignal:
    """Validate an analysis' answer into a TradingSignal, or raise AnswerError saying why not."""
    if analysis.error:
        raise AnswerError(
            f"the {analysis.provider}/{analysis.model_name} analysis of {analysis.symbol} "
            f"{analysis.as_of} has no valid answer ({analysis.error}): re-materialize "
            "llm_analysis for this partition"
        )
    return signal_from_text(
        analysis.response,
        provider=analysis.provider,
        model_name=analysis.model_name,
        min_confidence=min_confidence,
        symbol=symbol,
        as_of=as_of,
    )


def signal_from_text(
    text: str,
    *,
    provider: str,
    model_name: str,
    symbol: str,
    as_of: dt.date,
    min_confidence: float = 50.0,
) -> TradingSignal:
    """The TradingSignal an answer text describes, or AnswerError saying why it is not valid."""
    answer = parse_answer(text)
    risk_reward = None
    if answer.entry_price and answer.stop_loss and answer.take_profit:
        risk = abs(answer.entry_price - answer.stop_loss)
        if risk > 0:
            risk_reward = round(abs(answer.take_profit - answer.entry_price) / risk, 4)
    is_trade = answer.action is not Action.HOLD
    try:
        return TradingSignal(
            symbol=symbol,
            as_of=as_of,
            action=answer.action,
            confidence_score=answer.confidence_score,
            confidence_level=confidence_level_for(answer.confidence_score),
            reasoning=answer.reasoning,
            key_factors=answer.key_factors,
            trend=answer.trend,
            support=answer.support,
            resistance=answer.resistance,
            entry_price=answer.entry_price if is_trade else None,
            stop_loss=answer.stop_loss if is_trade else None,
            take_profit=answer.take_profit if is_trade else None,
            risk_reward_ratio=risk_reward if is_trade else None,
            position_size_pct=answer.position_size_pct if is_trade else 0.0,
            provider=provider,
            model_name=model_name,
            actionable=is_trade and answer.confidence_score >= min_confidence,
            min_confidence_score=min_confidence,
        )
    except ValidationError as exc:
        raise AnswerError(
            f"{provider}/{model_name} answered an invalid signal: "
            + "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        ) from exc
