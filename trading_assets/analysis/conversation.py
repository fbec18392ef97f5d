"""One analysis as a short conversation: ask, validate, and at most one repair request.

Provider-neutral: a ``Chat`` (resources/llm.py has the OpenAI and Anthropic ones) sends the
messages; this module decides what counts as an answer and records every attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from string import Template
from typing import Protocol

from trading_assets.analysis.answer import AnswerError, signal_from_text
from trading_assets.analysis.pricing import Price
from trading_assets.analysis.request import AnalysisRequest
from trading_assets.models import LlmAnalysis, LlmAttempt

REPAIR_PROMPT = "repair_v1.txt"


class LlmCallError(RuntimeError):
    """A request got no usable HTTP answer (after the bounded retries); says what to check."""


class AnalysisFailedError(RuntimeError):
    """The model answered, but not with a usable signal. ``analysis`` holds every attempt."""

    def __init__(self, message: str, analysis: LlmAnalysis) -> None:
        super().__init__(message)
        self.analysis = analysis


@dataclass(frozen=True)
class Reply:
    """One response: the answer text, or why there is none, plus what it cost."""

    text: str
    raw: str
    refusal: str | None = None
    truncated: bool = False
    stop_reason: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: float = 0.0
    retries: int = 0


class Chat(Protocol):
    def send(self) -> Reply:
        """Send the conversation so far; raises LlmCallError if no answer came back."""
        ...

    def add_repair(self, note: str) -> None:
        """Append the last reply and a user message asking to fix it (``note``)."""
        ...


def repair_note(error: str) -> str:
    text = resources.files("trading_assets.analysis").joinpath(f"prompts/{REPAIR_PROMPT}")
    return Template(text.read_text(encoding="utf-8")).substitute(error=error).strip()


def converse(chat: Chat, request: AnalysisRequest, price: Price | None) -> LlmAnalysis:
    """A validated analysis, or AnalysisFailedError carrying every raw response received.

    ``price`` None: an unpriced model (a local server's), recorded as cost 0 with priced false.

    LlmCallError from the first request propagates as is: nothing was received to keep.
    """
    who = f"{request.provider}/{request.model}"
    attempts: list[LlmAttempt] = []

    def fail(reason: str) -> AnalysisFailedError:
        message = f"{who} gave no valid signal for {request.symbol} {request.as_of}: {reason}"
        return AnalysisFailedError(message, _analysis(request, attempts, price, error=reason))

    reply = chat.send()
    attempts.append(_attempt("answer", request.prompt, reply))
    problem = _unusable(reply, who)
    if problem:
        attempts[-1] = attempts[-1].model_copy(update={"error": problem})
        raise fail(problem)
    first_error = _validate(reply.text, request)
    if first_error is None:
        return _analysis(request, attempts, price)

    attempts[-1] = attempts[-1].model_copy(update={"error": first_error})
    note = repair_note(first_error)
    chat.add_repair(note)
    try:
        reply = chat.send()
    except LlmCallError as exc:
        # Not chained: this message already quotes exc, and it is the one a user must read.
        raise fail(f"{first_error}; the repair request then failed: {exc}") from None
    attempts.append(_attempt("repair", note, reply))
    problem = _unusable(reply, who) or _validate(reply.text, request)
    if problem:
        attempts[-1] = attempts[-1].model_copy(update={"error": problem})
        raise fail(f"{first_error}; after one repair request: {problem}")
    return _analysis(request, attempts, price)


def _unusable(reply: Reply, who: str) -> str | None:
    """Why a reply is not an answer at all (refused, cut off, empty); None if it is one."""
    if reply.refusal is not None:
        return f"{who} refused to answer ({reply.refusal.strip() or 'no reason given'})"
    if reply.truncated:
        return (
            f"the answer was cut off at the output token limit (stop reason {reply.stop_reason}): "
            "raise LLM_MAX_OUTPUT_TOKENS"
        )
    if not reply.text.strip():
        return f"{who} returned an empty answer (stop reason {reply.stop_reason})"
    return None


def _validate(text: str, request: AnalysisRequest) -> str | None:
    try:
        signal_from_text(
            text,
            provider=request.provider,
            model_name=request.model,
            symbol=request.symbol,
            as_of=request.as_of,
        )
    except AnswerError as exc:
        return str(exc)
    return None


def _attempt(purpose: str, sent: str, reply: Reply) -> LlmAttempt:
    return LlmAttempt(
        purpose=purpose,  # type: ignore[arg-type]  # "answer" | "repair", validated by the model
        sent=sent,
        response=reply.text if reply.refusal is None else reply.refusal,
        raw=reply.raw,
        input_tokens=reply.input_tokens,
        output_tokens=reply.output_tokens,
        latency_ms=round(reply.latency_ms, 3),
        retries=reply.retries,
    )


def _analysis(
    request: AnalysisRequest,
    attempts: list[LlmAttempt],
    price: Price | None,
    error: str | None = None,
) -> LlmAnalysis:
    input_tokens = sum(a.input_tokens for a in attempts)
    output_tokens = sum(a.output_tokens for a in attempts)
    return LlmAnalysis(
        **request.recorded(),
        response=attempts[-1].response,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        latency_ms=round(sum(a.latency_ms for a in attempts), 3),
        cost_usd=price.cost_usd(input_tokens, output_tokens) if price else 0.0,
        priced=price is not None,
        attempts=attempts,
        error=error,
    )
