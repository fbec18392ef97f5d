"""The real `anthropic` SDK against a local server with the Messages API's shapes."""

from __future__ import annotations

import pytest
from pytest_httpserver import HTTPServer

import resources.llm as llm_module
from resources.llm import AnalysisFailedError, LlmCallError, LlmConfigError, LlmResource
from tests.llm.api_shapes import (
    ANTHROPIC_MODEL,
    BAD_BUY,
    GOOD_BUY,
    VALID_SIGNAL,
    anthropic_error,
    anthropic_images,
    anthropic_text_message,
    anthropic_tool_message,
)
from tests.llm.conftest import ANTHROPIC_KEY, DAY, INDICATORS, Script
from trading_assets.analysis.answer import parse_answer
from trading_assets.analysis.schema import strict_schema
from trading_assets.models import LlmAnalysis

pytestmark = pytest.mark.integration  # the real SDKs against a local HTTP server


def _llm(httpserver: HTTPServer, **overrides: object) -> LlmResource:
    settings: dict[str, object] = {
        "provider": "anthropic",
        "api_base_url": httpserver.url_for("/"),
        "anthropic_api_key": ANTHROPIC_KEY,
        "timeout_seconds": 0.2,
        "max_attempts": 2,
        "backoff_seconds": 0.0,
        **overrides,
    }
    return LlmResource(**settings)  # type: ignore[arg-type]


def _analyse(llm: LlmResource, charts: dict[str, bytes], **choice: str) -> LlmAnalysis:
    request = llm.prepare(symbol="NVDA", as_of=DAY, indicators=INDICATORS, charts=charts, **choice)
    return llm.analyse(request)


def test_a_valid_signal_sends_both_charts_as_image_blocks_and_forces_the_tool(
    httpserver: HTTPServer, anthropic_api: Script, charts: dict[str, bytes]
) -> None:
    anthropic_api.then(anthropic_tool_message(VALID_SIGNAL))
    analysis = _analyse(_llm(httpserver), charts)

    (seen,) = anthropic_api.seen
    # Older SDKs send x-api-key, newer ones a bearer token: either way, this request's key.
    bearer = seen.headers.get("authorization", "").removeprefix("Bearer ")
    sent_key = seen.headers.get("x-api-key") or bearer
    assert sent_key == ANTHROPIC_KEY
    assert "anthropic-version" in seen.headers
    assert seen.body["model"] == ANTHROPIC_MODEL
    assert seen.body["max_tokens"] == 2048
    assert anthropic_images(seen.body) == [charts["daily"], charts["weekly"]]
    text = seen.body["messages"][0]["content"][-1]
    assert text["type"] == "text" and "NVDA" in text["text"]
    (tool,) = seen.body["tools"]
    assert tool["name"] == "record_signal" and tool["input_schema"] == strict_schema()
    assert seen.body["tool_choice"] == {"type": "tool", "name": "record_signal"}

    assert parse_answer(analysis.response) == parse_answer(analysis.attempts[0].response)
    assert parse_answer(analysis.response).action.value == "HOLD"
    assert (analysis.provider, analysis.model_name) == ("anthropic", ANTHROPIC_MODEL)
    assert (analysis.input_tokens, analysis.output_tokens) == (2095, 210)
    # claude-sonnet-4-6: $3 / $15 per 1M tokens in / out
    assert analysis.cost_usd == pytest.approx((2095 * 3 + 210 * 15) / 1e6)
    assert '"stop_reason":"tool_use"' in analysis.attempts[0].raw
    assert ANTHROPIC_KEY not in analysis.model_dump_json()


def test_a_schema_violation_goes_back_as_a_tool_error_and_is_repaired(
    httpserver: HTTPServer, anthropic_api: Script, charts: dict[str, bytes]
) -> None:
    anthropic_api.then(anthropic_tool_message(BAD_BUY, tool_id="toolu_bad")).then(
        anthropic_tool_message(GOOD_BUY, tool_id="toolu_good")
    )
    analysis = _analyse(_llm(httpserver), charts)

    assert len(anthropic_api.seen) == 2
    user, assistant, repair = anthropic_api.seen[1].body["messages"]
    assert anthropic_images({"messages": [user]}) == [charts["daily"], charts["weekly"]]
    assert assistant["content"] == [
        {"type": "tool_use", "id": "toolu_bad", "name": "record_signal", "input": BAD_BUY}
    ]
    (result,) = repair["content"]
    assert result["type"] == "tool_result" and result["tool_use_id"] == "toolu_bad"
    assert result["is_error"] is True and "stop_loss" in result["content"]
    assert parse_answer(analysis.response).stop_loss == 190.0
    assert [a.purpose for a in analysis.attempts] == ["answer", "repair"]
    assert analysis.error is None


def test_a_schema_violation_twice_fails_and_keeps_both_raw_responses(
    httpserver: HTTPServer, anthropic_api: Script, charts: dict[str, bytes]
) -> None:
    anthropic_api.then(anthropic_tool_message({**VALID_SIGNAL, "confidence_score": 140}))
    with pytest.raises(AnalysisFailedError, match="confidence_score") as failed:
        _analyse(_llm(httpserver), charts)
    assert len(anthropic_api.seen) == 2
    attempts = failed.value.analysis.attempts
    assert [a.purpose for a in attempts] == ["answer", "repair"]
    assert all('"confidence_score":140' in a.raw for a in attempts)


def test_a_refusal_is_a_clear_failure_not_a_hold(
    httpserver: HTTPServer, anthropic_api: Script, charts: dict[str, bytes]
) -> None:
    anthropic_api.then(
        anthropic_text_message("I can't provide trading recommendations.", "refusal")
    )
    with pytest.raises(AnalysisFailedError, match="refused to answer") as failed:
        _analyse(_llm(httpserver), charts)
    assert "can't provide trading recommendations" in str(failed.value)
    assert len(anthropic_api.seen) == 1
    assert '"stop_reason":"refusal"' in failed.value.analysis.attempts[0].raw


def test_text_instead_of_the_tool_call_is_a_failure(
    httpserver: HTTPServer, anthropic_api: Script, charts: dict[str, bytes]
) -> None:
    anthropic_api.then(anthropic_text_message("The chart looks bullish.", "end_turn"))
    with pytest.raises(AnalysisFailedError, match="no record_signal tool call"):
        _analyse(_llm(httpserver), charts)


def test_an_answer_cut_off_at_max_tokens_names_the_setting(
    httpserver: HTTPServer, anthropic_api: Script, charts: dict[str, bytes]
) -> None:
    anthropic_api.then(anthropic_text_message("", "max_tokens"))
    with pytest.raises(AnalysisFailedError, match="LLM_MAX_OUTPUT_TOKENS"):
        _analyse(_llm(httpserver), charts)


@pytest.mark.parametrize(
    ("status", "error_type"), [(429, "rate_limit_error"), (529, "overloaded_error")]
)
def test_a_429_or_overload_waits_what_the_server_asks_then_succeeds(
    httpserver: HTTPServer,
    anthropic_api: Script,
    charts: dict[str, bytes],
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    error_type: str,
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(llm_module, "_sleep", waits.append)
    anthropic_api.then(
        anthropic_error(error_type, "Number of request tokens has exceeded your rate limit."),
        status=status,
        headers={"retry-after": "7"},
    ).then(anthropic_tool_message(VALID_SIGNAL))
    analysis = _analyse(_llm(httpserver), charts)
    assert waits == [7.0]
    assert len(anthropic_api.seen) == 2
    assert analysis.attempts[0].retries == 1 and analysis.error is None


def test_a_timeout_is_retried_then_fails_naming_the_setting(
    httpserver: HTTPServer, anthropic_api: Script, charts: dict[str, bytes]
) -> None:
    anthropic_api.then(anthropic_tool_message(VALID_SIGNAL), delay=0.5)
    with pytest.raises(LlmCallError, match="did not answer within 0.2 s"):
        _analyse(_llm(httpserver), charts)
    assert len(anthropic_api.seen) == 2


def test_a_rejected_key_names_the_variable_and_is_never_echoed(
    httpserver: HTTPServer, anthropic_api: Script, charts: dict[str, bytes]
) -> None:
    anthropic_api.then(
        anthropic_error("authentication_error", f"invalid x-api-key {ANTHROPIC_KEY}"), status=401
    )
    with pytest.raises(LlmCallError, match="ANTHROPIC_API_KEY") as failed:
        _analyse(_llm(httpserver), charts)
    assert len(anthropic_api.seen) == 1
    assert ANTHROPIC_KEY not in str(failed.value) and ANTHROPIC_KEY not in repr(failed.value)
    assert ANTHROPIC_KEY not in str(failed.value.__cause__)


def test_a_missing_key_fails_before_any_request_naming_the_variable(
    httpserver: HTTPServer, anthropic_api: Script, charts: dict[str, bytes]
) -> None:
    with pytest.raises(LlmConfigError, match="ANTHROPIC_API_KEY"):
        _analyse(_llm(httpserver, anthropic_api_key="  "), charts)
    assert anthropic_api.seen == []
