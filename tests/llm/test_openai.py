"""The real `openai` SDK against a local server with the Chat Completions API's shapes."""

from __future__ import annotations

import json

import pytest
from pytest_httpserver import HTTPServer

import resources.llm as llm_module
from io_managers.serializers import serialize
from resources.llm import (
    AnalysisFailedError,
    LlmCallError,
    LlmConfigError,
    LlmResource,
    is_local_base_url,
)
from tests.llm.api_shapes import (
    BAD_BUY,
    GOOD_BUY,
    OPENAI_MODEL,
    VALID_SIGNAL,
    dumps,
    openai_completion,
    openai_error,
    openai_images,
)
from tests.llm.conftest import DAY, INDICATORS, OPENAI_KEY, Script
from trading_assets.analysis.answer import parse_answer
from trading_assets.analysis.assets import analysis_metadata
from trading_assets.analysis.schema import SCHEMA_NAME, strict_schema
from trading_assets.models import LlmAnalysis

pytestmark = pytest.mark.integration  # the real SDKs against a local HTTP server


def _llm(httpserver: HTTPServer, **overrides: object) -> LlmResource:
    settings: dict[str, object] = {
        "provider": "openai",
        "api_base_url": httpserver.url_for("/v1"),
        "openai_api_key": OPENAI_KEY,
        "timeout_seconds": 0.2,
        "max_attempts": 2,
        "backoff_seconds": 0.0,
        **overrides,
    }
    return LlmResource(**settings)  # type: ignore[arg-type]


def _analyse(llm: LlmResource, charts: dict[str, bytes], **choice: str) -> LlmAnalysis:
    request = llm.prepare(symbol="TSLA", as_of=DAY, indicators=INDICATORS, charts=charts, **choice)
    return llm.analyse(request)


def _assert_no_secret(*texts: object) -> None:
    for text in texts:
        assert OPENAI_KEY not in str(text)


def test_a_valid_signal_sends_model_both_charts_and_the_strict_schema(
    httpserver: HTTPServer, openai_api: Script, charts: dict[str, bytes]
) -> None:
    openai_api.then(openai_completion(dumps(VALID_SIGNAL)))
    analysis = _analyse(_llm(httpserver), charts)

    (seen,) = openai_api.seen
    assert seen.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert seen.body["model"] == OPENAI_MODEL
    assert openai_images(seen.body) == [charts["daily"], charts["weekly"]]
    text = seen.body["messages"][0]["content"][0]
    assert text["type"] == "text" and "TSLA" in text["text"] and "2025-06-02" in text["text"]
    assert seen.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": SCHEMA_NAME, "schema": strict_schema(), "strict": True},
    }

    assert parse_answer(analysis.response).model_dump(mode="json") == parse_answer(
        dumps(VALID_SIGNAL)
    ).model_dump(mode="json")
    assert (analysis.provider, analysis.model_name) == ("openai", OPENAI_MODEL)
    assert (analysis.input_tokens, analysis.output_tokens) == (1850, 120)
    # gpt-4.1-mini: $0.40 / $1.60 per 1M tokens in / out
    assert analysis.cost_usd == pytest.approx((1850 * 0.40 + 120 * 1.60) / 1e6)
    assert analysis.error is None and analysis.latency_ms > 0
    assert set(analysis.image_sha256) == {"daily", "weekly"}
    assert [a.purpose for a in analysis.attempts] == ["answer"]
    assert json.loads(analysis.attempts[0].raw)["id"] == "chatcmpl-BX1c2d3e4f5g6h7i8j9k0"
    _assert_no_secret(analysis.model_dump_json())


def test_invalid_json_twice_fails_with_both_raw_responses(
    httpserver: HTTPServer, openai_api: Script, charts: dict[str, bytes]
) -> None:
    openai_api.then(openai_completion("Sure! Here is my analysis: {action: HOLD"))
    with pytest.raises(AnalysisFailedError, match="not JSON") as failed:
        _analyse(_llm(httpserver), charts)

    assert len(openai_api.seen) == 2
    repair = openai_api.seen[1].body["messages"]
    assert [m["role"] for m in repair] == ["user", "assistant", "user"]
    assert repair[1]["content"] == "Sure! Here is my analysis: {action: HOLD"
    assert "not JSON" in repair[2]["content"]
    analysis = failed.value.analysis
    assert analysis.error and [a.purpose for a in analysis.attempts] == ["answer", "repair"]
    assert all("{action: HOLD" in a.raw for a in analysis.attempts)
    assert analysis.input_tokens == 2 * 1850  # both requests are paid for and recorded
    _assert_no_secret(failed.value, analysis.model_dump_json())


def test_a_schema_violation_is_repaired_once(
    httpserver: HTTPServer, openai_api: Script, charts: dict[str, bytes]
) -> None:
    openai_api.then(openai_completion(dumps(BAD_BUY))).then(
        openai_completion(dumps(GOOD_BUY), prompt_tokens=2000, completion_tokens=130)
    )
    analysis = _analyse(_llm(httpserver), charts)

    assert len(openai_api.seen) == 2
    note = openai_api.seen[1].body["messages"][-1]["content"]
    assert "stop_loss" in note  # the repair request quotes the validation error
    assert openai_api.seen[1].body["response_format"]["type"] == "json_schema"
    assert openai_images(openai_api.seen[1].body) == [charts["daily"], charts["weekly"]]
    assert parse_answer(analysis.response).stop_loss == 190.0
    assert analysis.error is None
    assert [a.purpose for a in analysis.attempts] == ["answer", "repair"]
    assert analysis.attempts[0].error and "stop_loss" in analysis.attempts[0].error
    assert (analysis.input_tokens, analysis.output_tokens) == (3850, 250)


def test_a_refusal_is_a_clear_failure_not_a_hold(
    httpserver: HTTPServer, openai_api: Script, charts: dict[str, bytes]
) -> None:
    openai_api.then(openai_completion(None, refusal="I'm sorry, I can't help with that."))
    with pytest.raises(AnalysisFailedError, match="refused to answer") as failed:
        _analyse(_llm(httpserver), charts)
    assert len(openai_api.seen) == 1  # a refusal is not repaired or retried
    assert "I can't help with that" in str(failed.value)
    assert failed.value.analysis.attempts[0].raw


def test_an_empty_answer_is_a_clear_failure(
    httpserver: HTTPServer, openai_api: Script, charts: dict[str, bytes]
) -> None:
    openai_api.then(openai_completion(""))
    with pytest.raises(AnalysisFailedError, match="empty answer"):
        _analyse(_llm(httpserver), charts)


def test_a_429_waits_what_the_server_asks_then_succeeds(
    httpserver: HTTPServer,
    openai_api: Script,
    charts: dict[str, bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(llm_module, "_sleep", waits.append)
    limited = openai_error(
        "Rate limit reached for gpt-4.1-mini in organization org-abc on tokens per min (TPM): "
        "Limit 200000, Used 199000, Requested 6000. Please try again in 1.8s.",
        "tokens",
        "rate_limit_exceeded",
    )
    openai_api.then(limited, status=429, headers={"retry-after": "2"}).then(
        openai_completion(dumps(VALID_SIGNAL))
    )
    analysis = _analyse(_llm(httpserver), charts)

    assert waits == [2.0]
    assert len(openai_api.seen) == 2
    assert analysis.attempts[0].retries == 1


def test_a_retry_after_longer_than_a_run_waits_fails_at_once(
    httpserver: HTTPServer,
    openai_api: Script,
    charts: dict[str, bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(llm_module, "_sleep", pytest.fail)
    openai_api.then(
        openai_error("Rate limit reached", "requests", "rate_limit_exceeded"),
        status=429,
        headers={"retry-after": "3600"},
    )
    with pytest.raises(LlmCallError, match="wait 3600 s"):
        _analyse(_llm(httpserver), charts)
    assert len(openai_api.seen) == 1


def test_a_timeout_is_retried_then_fails_naming_the_setting(
    httpserver: HTTPServer, openai_api: Script, charts: dict[str, bytes]
) -> None:
    openai_api.then(openai_completion(dumps(VALID_SIGNAL)), delay=0.5)
    with pytest.raises(LlmCallError, match="LLM_TIMEOUT_SECONDS") as failed:
        _analyse(_llm(httpserver), charts)
    assert "did not answer within 0.2 s" in str(failed.value)
    assert "gave up after 2 attempts" in str(failed.value)
    assert len(openai_api.seen) == 2


def test_a_rejected_key_is_not_retried_and_never_echoed(
    httpserver: HTTPServer, openai_api: Script, charts: dict[str, bytes]
) -> None:
    # Some OpenAI-compatible servers quote the whole key back in the error.
    openai_api.then(
        openai_error(f"Incorrect API key provided: {OPENAI_KEY}.", "invalid_request_error",
                     "invalid_api_key"),
        status=401,
    )
    with pytest.raises(LlmCallError, match="OPENAI_API_KEY") as failed:
        _analyse(_llm(httpserver), charts)
    assert len(openai_api.seen) == 1
    _assert_no_secret(failed.value, repr(failed.value), failed.value.__cause__)


def test_a_missing_key_fails_before_any_request_naming_the_variable(
    httpserver: HTTPServer, openai_api: Script, charts: dict[str, bytes]
) -> None:
    with pytest.raises(LlmConfigError, match="OPENAI_API_KEY"):
        _analyse(_llm(httpserver, openai_api_key=None), charts)
    assert openai_api.seen == []


def test_a_public_api_model_missing_from_the_price_table_fails_before_any_request(
    httpserver: HTTPServer, openai_api: Script, charts: dict[str, bytes]
) -> None:
    for url in ("https://api.openai.com/v1", "https://llm.example.com/v1", "http://10.0.0.7/v1"):
        public = _llm(httpserver, api_base_url=url)
        assert not is_local_base_url(url)
        with pytest.raises(LlmConfigError, match=r'\[openai\."my-local-model"\]'):
            _analyse(public, charts, model="my-local-model")
    assert openai_api.seen == []


def test_a_local_server_model_missing_from_the_price_table_costs_0_unpriced(
    httpserver: HTTPServer, openai_api: Script, charts: dict[str, bytes]
) -> None:
    for url in ("http://localhost:11434/v1", "http://[::1]:8000/v1", "http://ollama:11434/v1"):
        assert is_local_base_url(url)
    openai_api.then(openai_completion(dumps(VALID_SIGNAL)))
    local = _llm(httpserver, model="my-local-model")
    assert local.estimate_cost_usd(10) == 0.0 and "unpriced" in local.describe()
    analysis = _analyse(local, charts)

    assert openai_api.seen[0].body["model"] == "my-local-model"
    assert (analysis.input_tokens, analysis.output_tokens) == (1850, 120)
    assert analysis.cost_usd == 0.0 and analysis.priced is False
    # Where a person reads the cost: the asset's metadata and the artifact row's metadata.
    assert analysis_metadata(analysis)["priced"] is False
    row = serialize(analysis).row_fields["artifact_metadata"]
    assert row["cost_usd"] == 0.0 and row["priced"] is False
    # A priced model says so too.
    openai_api.then(openai_completion(dumps(VALID_SIGNAL)))
    assert _analyse(_llm(httpserver), charts).priced is True


def test_the_key_never_appears_in_repr_or_describe(httpserver: HTTPServer) -> None:
    llm = _llm(httpserver)
    _assert_no_secret(repr(llm), llm.describe())
    assert "OPENAI_API_KEY set" in llm.describe()


def test_an_exhausted_quota_is_not_retried(
    httpserver: HTTPServer, openai_api: Script, charts: dict[str, bytes]
) -> None:
    openai_api.then(
        openai_error(
            "You exceeded your current quota, please check your plan and billing details.",
            "insufficient_quota",
            "insufficient_quota",
        ),
        status=429,
    )
    with pytest.raises(LlmCallError, match="no quota left.*OPENAI_API_KEY"):
        _analyse(_llm(httpserver), charts)
    assert len(openai_api.seen) == 1
