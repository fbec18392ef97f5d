"""llm_analysis materialized through Dagster against a local OpenAI / Anthropic API server."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import dagster as dg
import pytest
from pytest_httpserver import HTTPServer

from io_managers.artifact_store import ArtifactStore
from tests.conftest import TRADING_DAY
from tests.llm.api_shapes import (
    ANTHROPIC_MODEL,
    OPENAI_MODEL,
    VALID_SIGNAL,
    anthropic_tool_message,
    dumps,
    openai_completion,
    openai_images,
)
from tests.llm.conftest import ANTHROPIC_KEY, OPENAI_KEY, Script
from trading_assets.analysis.assets import llm_analysis, trading_signal
from trading_assets.charts.assets import daily_chart, weekly_chart
from trading_assets.environment import resources_from_environment
from trading_assets.errors import root_cause_message
from trading_assets.market_data.assets import market_data
from trading_assets.models import LlmAnalysis, TradingSignal
from trading_assets.partitions import partition_key_for

pytestmark = pytest.mark.integration  # the real SDKs against a local HTTP server

ASSETS = [market_data, daily_chart, weekly_chart, llm_analysis, trading_signal]
PARTITION = partition_key_for("TSLA", TRADING_DAY)
Materialize = Callable[..., dg.ExecuteInProcessResult]


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    # Keys are bound as dg.EnvVar and read from the process environment when a run starts.
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)


def _env(data_env: dict[str, str], provider: str, base_url: str, **extra: str) -> dict[str, str]:
    env = {
        **data_env,
        "LLM_PROVIDER": provider,
        "LLM_API_BASE_URL": base_url,
        "LLM_TIMEOUT_SECONDS": "2",
        "LLM_MAX_ATTEMPTS": "2",
        **extra,
    }
    if provider == "openai":
        env["OPENAI_API_KEY"] = OPENAI_KEY
    return env


@pytest.fixture
def materialize(instance: dg.DagsterInstance) -> Callable[[dict[str, str]], Materialize]:
    """``materialize(env)(selection, **llm_config)``: one run of this partition."""
    instance.add_dynamic_partitions("symbol", ["TSLA"])

    def bind(env: dict[str, str]) -> Materialize:
        resources = resources_from_environment(env)

        def run(selection: list[Any] | None = None, **config: Any) -> dg.ExecuteInProcessResult:
            return dg.materialize(
                ASSETS,
                selection=selection or [market_data, daily_chart, weekly_chart, llm_analysis],
                partition_key=PARTITION,
                resources=resources,
                instance=instance,
                run_config={"ops": {"llm_analysis": {"config": config}}} if config else None,
                raise_on_error=False,
            )

        return run

    return bind


def _store(env: dict[str, str]) -> ArtifactStore:
    resources = resources_from_environment(env)
    return ArtifactStore(resources["artifact_db"], resources["object_store"])


def _llm_metadata(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    (event,) = result.asset_materializations_for_node("llm_analysis")
    return {name: getattr(value, "value", value) for name, value in event.metadata.items()}


def _failure(result: dg.ExecuteInProcessResult, step: str) -> str:
    """What `trading-signals run` prints for a failed step: its innermost cause."""
    event = next(e for e in result.all_events if e.is_step_failure and e.step_key == step)
    return root_cause_message(event.step_failure_data.error)


def _assert_no_secret_anywhere(
    env: dict[str, str], instance: dg.DagsterInstance, secret: str
) -> None:
    """Not in any artifact row or payload, any event (metadata, errors, logs) or run config."""
    store = _store(env)
    for row in store.database.query(limit=1000):
        assert secret not in row.model_dump_json(), f"artifact #{row.id} row"
        assert secret.encode() not in store.read_payload(row), f"artifact #{row.id} payload"
    for run in instance.get_runs():
        assert secret not in repr(run.run_config)
        for entry in instance.all_logs(run.run_id):
            assert secret not in dg.serialize_value(entry), entry.dagster_event_type


def test_openai_decision_is_recorded_then_replayed_from_the_cache(
    httpserver: HTTPServer,
    openai_api: Script,
    data_env: dict[str, str],
    instance: dg.DagsterInstance,
    materialize: Callable[[dict[str, str]], Materialize],
    keys: None,
) -> None:
    openai_api.then(openai_completion(dumps(VALID_SIGNAL)))
    env = _env(data_env, "openai", httpserver.url_for("/v1"))
    run = materialize(env)

    first = run(ASSETS)
    assert first.success
    (seen,) = openai_api.seen
    assert seen.body["model"] == OPENAI_MODEL
    assert seen.body["response_format"]["type"] == "json_schema"
    daily, weekly = first.output_for_node("daily_chart"), first.output_for_node("weekly_chart")
    assert openai_images(seen.body) == [daily.png, weekly.png]  # the charts of this partition

    analysis = first.output_for_node("llm_analysis")
    assert isinstance(analysis, LlmAnalysis) and not analysis.cached
    assert analysis.image_sha256 == {
        "daily": hashlib.sha256(daily.png).hexdigest(),
        "weekly": hashlib.sha256(weekly.png).hexdigest(),
    }
    signal = first.output_for_node("trading_signal")
    assert isinstance(signal, TradingSignal)
    assert (signal.provider, signal.model_name, signal.action.value) == ("openai", OPENAI_MODEL,
                                                                        "HOLD")
    metadata = _llm_metadata(first)
    assert metadata["provider"] == "openai" and metadata["model"] == OPENAI_MODEL
    assert (metadata["input_tokens"], metadata["output_tokens"]) == (1850, 120)
    assert metadata["cost_usd"] > 0 and metadata["cached"] is False
    assert metadata["image_sha256"] == analysis.image_sha256
    assert metadata["prompt_version"] == "signal-v1"

    (row,) = _store(env).database.query(type="llm", execution_id=first.run_id)
    assert row.model_name == OPENAI_MODEL and row.prompt == seen.body["messages"][0]["content"][0][
        "text"]
    assert row.response == analysis.response
    assert row.artifact_metadata["provider"] == "openai"
    stored = _store(env).load(row)
    assert isinstance(stored, LlmAnalysis) and stored.attempts[0].raw  # the whole API response

    replay = run([llm_analysis])
    assert replay.success
    assert len(openai_api.seen) == 1  # the cache answered: no second call
    replayed = _llm_metadata(replay)
    assert replayed["cached"] is True and replayed["cost_usd"] == 0
    assert replayed["cached_from"].startswith(f"artifact #{row.id}")
    assert replay.output_for_node("llm_analysis").response == analysis.response

    fresh = run([llm_analysis], fresh=True)
    assert fresh.success
    assert len(openai_api.seen) == 2  # fresh=true asks the model again
    assert _llm_metadata(fresh)["cached"] is False

    _assert_no_secret_anywhere(env, instance, OPENAI_KEY)


def test_run_config_compares_two_models_on_one_partition(
    httpserver: HTTPServer,
    openai_api: Script,
    data_env: dict[str, str],
    instance: dg.DagsterInstance,
    materialize: Callable[[dict[str, str]], Materialize],
    keys: None,
) -> None:
    openai_api.then(openai_completion(dumps(VALID_SIGNAL)))
    env = _env(data_env, "openai", httpserver.url_for("/v1"))
    run = materialize(env)

    assert run().success
    other = run([llm_analysis], model="gpt-4.1")
    assert other.success
    assert [s.body["model"] for s in openai_api.seen] == [OPENAI_MODEL, "gpt-4.1"]
    assert _llm_metadata(other)["model"] == "gpt-4.1" and not _llm_metadata(other)["cached"]

    offline = run([llm_analysis], provider="offline")
    assert offline.success and len(openai_api.seen) == 2
    assert _llm_metadata(offline)["model"] == "offline-rules-v1"

    rows = _store(env).database.query(type="llm", step_name="llm_analysis")
    assert sorted(r.model_name for r in rows) == sorted([OPENAI_MODEL, "gpt-4.1",
                                                         "offline-rules-v1"])

    # Another provider needs its own key: the run fails at the start, naming it.
    switched = run([llm_analysis], provider="anthropic")
    assert not switched.success and "ANTHROPIC_API_KEY" in _failure(switched, "llm_analysis")
    unknown = run([llm_analysis], provider="gemini")
    assert not unknown.success
    assert "llm_analysis run config provider='gemini'" in _failure(unknown, "llm_analysis")
    assert len(openai_api.seen) == 2


def test_a_missing_key_fails_at_the_start_naming_the_variable(
    httpserver: HTTPServer,
    openai_api: Script,
    data_env: dict[str, str],
    materialize: Callable[[dict[str, str]], Materialize],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    env = _env(data_env, "openai", httpserver.url_for("/v1"))
    del env["OPENAI_API_KEY"]
    result = materialize(env)()
    assert not result.success
    assert "OPENAI_API_KEY is not set" in _failure(result, "llm_analysis")
    assert openai_api.seen == []


def test_a_refusal_fails_the_step_and_keeps_the_raw_response(
    httpserver: HTTPServer,
    openai_api: Script,
    data_env: dict[str, str],
    instance: dg.DagsterInstance,
    materialize: Callable[[dict[str, str]], Materialize],
    keys: None,
) -> None:
    openai_api.then(openai_completion(None, refusal="I can't help with trading decisions."))
    env = _env(data_env, "openai", httpserver.url_for("/v1"))
    result = materialize(env)(ASSETS)

    assert not result.success
    message = _failure(result, "llm_analysis")
    assert "refused to answer" in message and "trading-signals artifacts show" in message
    store = _store(env)
    (row,) = store.database.query(type="llm")
    assert row.step_name == "llm_analysis_failed"
    # Never loaded as the partition's analysis by a downstream re-run or MLflow.
    assert store.database.latest("llm_analysis", row.partition_key or "") is None
    failed = store.load(row)
    assert isinstance(failed, LlmAnalysis) and failed.error and "refused" in failed.error
    assert "I can't help with trading decisions." in failed.attempts[0].raw
    assert store.database.query(type="signal") == []  # never a silent HOLD

    # A failed analysis is never replayed from the cache: the next run asks again.
    openai_api.replies[:] = [(200, openai_completion(dumps(VALID_SIGNAL)), {}, 0.0)]
    again = materialize(env)([llm_analysis])
    assert again.success and len(openai_api.seen) == 2
    _assert_no_secret_anywhere(env, instance, OPENAI_KEY)


def test_a_timeout_fails_the_step_naming_the_setting(
    httpserver: HTTPServer,
    openai_api: Script,
    data_env: dict[str, str],
    materialize: Callable[[dict[str, str]], Materialize],
    keys: None,
) -> None:
    openai_api.then(openai_completion(dumps(VALID_SIGNAL)), delay=0.6)
    env = _env(data_env, "openai", httpserver.url_for("/v1"), LLM_TIMEOUT_SECONDS="0.2")
    result = materialize(env)()
    assert not result.success
    message = _failure(result, "llm_analysis")
    assert "did not answer within 0.2 s (LLM_TIMEOUT_SECONDS)" in message
    assert "gave up after 2 attempts (LLM_MAX_ATTEMPTS)" in message
    assert len(openai_api.seen) == 2


def test_anthropic_reads_both_charts_and_a_run_can_switch_its_model(
    httpserver: HTTPServer,
    anthropic_api: Script,
    data_env: dict[str, str],
    instance: dg.DagsterInstance,
    materialize: Callable[[dict[str, str]], Materialize],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    anthropic_api.then(anthropic_tool_message(VALID_SIGNAL))
    env = {**_env(data_env, "anthropic", httpserver.url_for("/")),
           "ANTHROPIC_API_KEY": ANTHROPIC_KEY}
    run = materialize(env)

    first = run(ASSETS)
    assert first.success
    assert first.output_for_node("trading_signal").model_name == ANTHROPIC_MODEL
    haiku = run([llm_analysis], model="claude-haiku-4-5")
    assert haiku.success
    assert [s.body["model"] for s in anthropic_api.seen] == [ANTHROPIC_MODEL, "claude-haiku-4-5"]
    for seen in anthropic_api.seen:
        assert len([b for b in seen.body["messages"][0]["content"] if b["type"] == "image"]) == 2
        assert seen.body["tool_choice"] == {"type": "tool", "name": "record_signal"}
    _assert_no_secret_anywhere(env, instance, ANTHROPIC_KEY)


def test_llm_analysis_runs_in_the_llm_concurrency_pool() -> None:
    assert llm_analysis.op.pool == "llm"
