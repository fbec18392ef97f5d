"""The doctor's checks of MLflow, the IB gateway and the LLM API, up and down, against real local
servers: `mlflow server`, the fake gateway (and a real socket for a down one), the scripted API."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from ib_async.wrapper import RequestError
from pytest_httpserver import HTTPServer

from resources.llm import LlmResource
from resources.mlflow_tracking import MlflowTracking
from tests.ibkr.conftest import ibkr_env, wired  # noqa: F401  (ibkr_env: a fixture)
from tests.ibkr.fake_ib import FakeGateway
from tests.llm.api_shapes import anthropic_models, openai_error, openai_models
from tests.llm.conftest import (  # noqa: F401  (fixtures)
    ANTHROPIC_KEY,
    OPENAI_KEY,
    Script,
    make_httpserver,
    models_api,
)
from tests.servers import free_port
from tests.tracking.conftest import mlflow_server, mlflow_template  # noqa: F401  (fixtures)
from trading_assets.doctor import SERVICES, Finding, run_checks, services_used
from trading_assets.environment import resources_from_environment

PASSWORD = "Doctor-Mlflow-S3cret"


def _check(service: str, resources: dict[str, Any], instance: dg.DagsterInstance,
           timeout: float = 5.0) -> Finding:
    started = time.monotonic()
    (finding,) = run_checks(resources, instance, services={service}, timeout=timeout)
    # Bounded by the timeout (with room for a loaded machine), not hanging.
    assert time.monotonic() - started < timeout * 2 + 5, finding
    assert finding.service == service
    return finding


def _clean(finding: Finding, *secrets: str) -> Finding:
    for secret in secrets:
        assert secret not in finding.line()
    return finding


# ---------------------------------------------------------------- which checks run


def test_services_used_names_the_gateway_and_llm_only_when_configured(
    data_env: dict[str, str], instance: dg.DagsterInstance
) -> None:
    default = resources_from_environment(data_env)
    assert services_used(default) == set(SERVICES) - {"gateway", "llm"}
    busy = {**data_env, "TRADING_MODE": "ibkr-paper", "LLM_PROVIDER": "openai"}
    assert services_used(resources_from_environment(busy)) == set(SERVICES)
    data_only = {**data_env, "MARKET_DATA_SOURCE": "ibkr"}
    assert "gateway" in services_used(resources_from_environment(data_only))

    findings = run_checks(default, instance, services=["llm", "gateway", "calendar"])
    assert [f.service for f in findings] == ["calendar", "gateway", "llm"]
    assert all(f.ok for f in findings)
    gateway, llm = findings[1], findings[2]
    assert gateway.detail == "not used (TRADING_MODE=simulate, market data synthetic)"
    assert llm.detail == "offline analyst: no API used"
    with pytest.raises(ValueError, match="no check for gatway"):
        run_checks(default, instance, services={"gatway"})


# ---------------------------------------------------------------- MLflow


def test_mlflow_server_up_then_down_without_its_password(
    mlflow_server: str, instance: dg.DagsterInstance  # noqa: F811
) -> None:
    with_password = mlflow_server.replace("http://", f"http://doctor:{PASSWORD}@")
    up = _check("mlflow", {"mlflow": MlflowTracking(tracking_uri=with_password)}, instance)
    assert _clean(up, PASSWORD).ok, up
    assert "doctor:***@127.0.0.1" in up.detail and "answers" in up.detail

    gone = f"http://doctor:{PASSWORD}@127.0.0.1:{free_port()}"
    down = _check("mlflow", {"mlflow": MlflowTracking(tracking_uri=gone)}, instance)
    assert not _clean(down, PASSWORD).ok
    assert "cannot reach http://doctor:***@127.0.0.1:" in down.detail
    assert "MLFLOW_TRACKING_URI" in down.detail and "trading is unaffected" in down.detail


def test_mlflow_local_store_folder_writable_or_not(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    fresh = MlflowTracking(tracking_uri=f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}")
    ok = _check("mlflow", {"mlflow": fresh}, instance)
    assert ok.ok and "local store, writable" in ok.detail and "created on first use" in ok.detail

    (tmp_path / "a-file").write_text("not a folder")
    blocked = MlflowTracking(tracking_uri=f"sqlite:///{tmp_path / 'a-file' / 'mlflow.db'}")
    problem = _check("mlflow", {"mlflow": blocked}, instance)
    assert not problem.ok and "cannot write" in problem.detail
    assert "MLFLOW_TRACKING_URI" in problem.detail


# ---------------------------------------------------------------- IB gateway


def test_gateway_paper_account_and_market_data_ok(
    ibkr_env: dict[str, str], instance: dg.DagsterInstance  # noqa: F811
) -> None:
    gateway = FakeGateway()
    finding = _check("gateway", wired(ibkr_env, gateway), instance)
    assert _clean(finding, gateway.account).ok, finding
    assert "127.0.0.1:4002 (IB Gateway paper), client id 1" in finding.detail
    assert "paper account DU***567 matches TRADING_MODE=ibkr-paper" in finding.detail
    assert "TSLA daily bars" in finding.detail
    assert gateway.calls["reqHistoricalData"] == 1 and gateway.calls["placeOrder"] == 0


def test_gateway_live_account_on_a_paper_mode_is_a_problem(
    ibkr_env: dict[str, str], instance: dg.DagsterInstance  # noqa: F811
) -> None:
    gateway = FakeGateway(account="U7654321")
    finding = _check("gateway", wired(ibkr_env, gateway), instance)
    assert not _clean(finding, "U7654321").ok
    assert "TRADING_MODE=ibkr-paper" in finding.detail
    assert "U7***321, a live account" in finding.detail


def test_gateway_without_market_data_permission_is_a_problem(
    ibkr_env: dict[str, str], instance: dg.DagsterInstance  # noqa: F811
) -> None:
    gateway = FakeGateway()
    refused = RequestError(7, 354, "Requested market data is not subscribed.")
    gateway.fail("reqHistoricalData", refused)
    finding = _check("gateway", wired(ibkr_env, gateway), instance)
    assert not _clean(finding, gateway.account).ok
    assert "TSLA" in finding.detail and "subscription" in finding.detail


def test_gateway_down_is_named_within_the_timeout(
    data_env: dict[str, str], instance: dg.DagsterInstance
) -> None:
    port = free_port()
    env = {**data_env, "TRADING_MODE": "ibkr-paper", "MARKET_DATA_SOURCE": "ibkr",
           "IBKR_PORT": str(port)}
    started = time.monotonic()
    finding = _check("gateway", resources_from_environment(env), instance)
    assert time.monotonic() - started < 15  # the 5 s timeout, with room for a loaded machine
    assert not finding.ok
    assert f"nothing answers at 127.0.0.1:{port}" in finding.detail
    assert f"TWS or IB Gateway with the API enabled, socket port {port}" in finding.detail
    assert "IBKR_HOST / IBKR_PORT / TRADING_MODE / MARKET_DATA_SOURCE" in finding.detail


def test_a_gateway_that_accepts_and_never_speaks_is_named_within_the_timeout(
    data_env: dict[str, str], instance: dg.DagsterInstance
) -> None:
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        env = {**data_env, "MARKET_DATA_SOURCE": "ibkr", "IBKR_PORT": str(port)}
        finding = _check("gateway", resources_from_environment(env), instance, timeout=2.0)
    assert not finding.ok and f"127.0.0.1:{port}" in finding.detail, finding
    assert "IBKR_HOST / IBKR_PORT / MARKET_DATA_SOURCE" in finding.detail


# ---------------------------------------------------------------- LLM provider


def _openai(httpserver: HTTPServer, **overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "provider": "openai", "api_base_url": httpserver.url_for("/v1"),
        "openai_api_key": OPENAI_KEY, "timeout_seconds": 60.0, "backoff_seconds": 0.0,
        **overrides,
    }
    return {"llm": LlmResource(**settings)}


def test_llm_key_accepted_and_model_listed(
    httpserver: HTTPServer, models_api: Script, instance: dg.DagsterInstance  # noqa: F811
) -> None:
    models_api.then(openai_models("gpt-4.1", "gpt-4.1-mini", "gpt-4o"))
    finding = _check("llm", _openai(httpserver), instance)
    assert _clean(finding, OPENAI_KEY).ok, finding
    assert "openai gpt-4.1-mini at http://127.0.0.1:" in finding.detail
    assert "OPENAI_API_KEY accepted, model listed; $0.4/$1.6 per 1M tokens" in finding.detail
    (seen,) = models_api.seen
    assert seen.headers["authorization"] == f"Bearer {OPENAI_KEY}"


def test_llm_anthropic_alias_found_among_dated_models(
    httpserver: HTTPServer, models_api: Script, instance: dg.DagsterInstance  # noqa: F811
) -> None:
    models_api.then(anthropic_models("claude-sonnet-4-6", "claude-sonnet-4-5-20250929"))
    llm = LlmResource(provider="anthropic", model="claude-sonnet-4-5",
                      api_base_url=httpserver.url_for("/"), anthropic_api_key=ANTHROPIC_KEY)
    finding = _check("llm", {"llm": llm}, instance)
    assert _clean(finding, ANTHROPIC_KEY).ok, finding
    (seen,) = models_api.seen
    sent = seen.headers.get("x-api-key") or seen.headers["authorization"].removeprefix("Bearer ")
    assert sent == ANTHROPIC_KEY
    assert "claude-sonnet-4-5 at http://127.0.0.1:" in finding.detail


def test_llm_rejected_key_is_named_without_the_key(
    httpserver: HTTPServer, models_api: Script, instance: dg.DagsterInstance  # noqa: F811
) -> None:
    # The server quotes the key back, as OpenAI's does (partly): it must not reach the line.
    message = f"Incorrect API key provided: {OPENAI_KEY}."
    models_api.then(openai_error(message, "invalid_request_error", "invalid_api_key"), status=401)
    finding = _check("llm", _openai(httpserver), instance)
    assert not _clean(finding, OPENAI_KEY).ok
    assert "rejected the API key (HTTP 401" in finding.detail
    assert "check OPENAI_API_KEY" in finding.detail
    assert len(models_api.seen) == 1  # not retried


def test_llm_missing_model_names_some_that_exist(
    httpserver: HTTPServer, models_api: Script, instance: dg.DagsterInstance  # noqa: F811
) -> None:
    models_api.then(openai_models(*[f"model-{i}" for i in range(8)]))
    finding = _check("llm", _openai(httpserver, model="gpt-9"), instance)
    assert not _clean(finding, OPENAI_KEY).ok
    assert "does not serve model 'gpt-9': set LLM_MODEL" in finding.detail
    assert "model-0, model-1, model-2, model-3, model-4 and 3 more" in finding.detail


def test_llm_server_down_names_the_base_url(instance: dg.DagsterInstance) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    llm = LlmResource(provider="openai", api_base_url=url, openai_api_key=OPENAI_KEY,
                      backoff_seconds=0.0)
    finding = _check("llm", {"llm": llm}, instance)
    assert not _clean(finding, OPENAI_KEY).ok
    assert f"cannot reach openai at {url}: check LLM_API_BASE_URL" in finding.detail
    assert "gave up after 2 attempts" in finding.detail  # one retry, no more


def test_llm_local_model_outside_the_price_table_is_ok_and_unpriced(
    httpserver: HTTPServer, models_api: Script, instance: dg.DagsterInstance  # noqa: F811
) -> None:
    models_api.then(openai_models("llama3.2-vision:11b"))
    finding = _check("llm", _openai(httpserver, model="llama3.2-vision:11b"), instance)
    assert finding.ok, finding
    assert "unpriced" in finding.detail and "cost recorded as 0 (priced: false)" in finding.detail
