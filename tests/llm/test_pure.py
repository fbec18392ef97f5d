"""The plain functions behind the analyst: retry-after, URL display, strict schema, cache key."""

from __future__ import annotations

import datetime as dt
import email.utils

import pytest

from resources.llm import LlmResource, shown_url
from resources.llm_errors import retry_after_seconds
from trading_assets.analysis.request import build_request
from trading_assets.analysis.schema import strict_schema

NOW = 1_750_000_000.0


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after-ms": "250", "retry-after": "1"}, 0.25),
        ({"retry-after": email.utils.formatdate(NOW + 30, usegmt=True)}, 30.0),
        ({"retry-after": email.utils.formatdate(NOW - 30, usegmt=True)}, 0.0),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_seconds(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after_seconds(headers, now=NOW) == seconds


def test_shown_url_drops_credentials_and_query() -> None:
    url = "https://user:sk-secret@llm.example.com:8443/v1?api-key=sk-secret"
    assert shown_url(url) == "https://llm.example.com:8443/v1"


def test_the_strict_schema_is_closed_inlined_and_all_required() -> None:
    schema = strict_schema()
    assert "$defs" not in schema and "$ref" not in str(schema)
    assert schema["additionalProperties"] is False
    assert schema["required"] == list(schema["properties"])
    assert schema["properties"]["action"]["enum"] == ["BUY", "SELL", "HOLD"]
    assert {"type": "null"} in schema["properties"]["stop_loss"]["anyOf"]


def test_the_cache_key_changes_with_model_prompt_images_and_server() -> None:
    charts = {"daily": b"png-1", "weekly": b"png-2"}

    def key(**change: object) -> str:
        settings: dict[str, object] = {
            "symbol": "TSLA", "as_of": dt.date(2025, 6, 2), "provider": "openai",
            "model": "gpt-4.1-mini", "indicators": {"close": 100.0}, "charts": charts, **change,
        }
        return build_request(**settings).cache_key  # type: ignore[arg-type]

    assert key() == key()
    assert len({key(), key(model="gpt-4.1"), key(indicators={"close": 101.0}),
                key(charts={**charts, "weekly": b"png-3"}), key(provider="anthropic"),
                key(endpoint="http://localhost:11434/v1")}) == 6


def test_a_run_override_of_provider_uses_that_providers_default_model_and_url() -> None:
    llm = LlmResource(provider="openai", model="gpt-4.1", api_base_url="http://localhost:11434/v1")
    assert llm.model_name() == "gpt-4.1"
    assert llm.model_name("anthropic") == "claude-sonnet-4-6"
    assert llm.model_name("anthropic", "claude-haiku-4-5") == "claude-haiku-4-5"
    assert llm.base_url("openai") == "http://localhost:11434/v1"
    assert llm.base_url("anthropic") == "https://api.anthropic.com"
    assert llm.model_name("offline", "gpt-4.1") == "offline-rules-v1"
