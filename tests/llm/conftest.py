"""A scripted local API server (pytest-httpserver) and the settings the real SDKs are pointed at."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.llm.api_shapes import tiny_png

OPENAI_KEY = "fake-openai-key-for-tests-5f3c9a7e21"  # not a real key: unique, to spot leaks
ANTHROPIC_KEY = "fake-anthropic-key-for-tests-8d2b41"
OPENAI_PATH = "/v1/chat/completions"
ANTHROPIC_PATH = "/v1/messages"
MODELS_PATH = "/v1/models"  # the same path in both APIs
DAY = dt.date(2025, 6, 2)
INDICATORS: dict[str, float | None] = {
    "close": 195.0,
    "sma_20": 190.0,
    "sma_50": 200.0,
    "sma_200": None,
    "rsi_14": 51.2,
    "macd_hist": 0.01,
    "high_20": 210.25,
    "low_20": 180.5,
}


@dataclass
class Seen:
    """One request as the server received it."""

    headers: dict[str, str]  # lower-case names
    body: dict[str, Any]  # {} for a GET


@dataclass
class Script:
    """Answers requests to one path in order; records every request it gets."""

    replies: list[tuple[int, dict[str, Any], dict[str, str], float]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)

    def then(
        self,
        body: dict[str, Any],
        status: int = 200,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
    ) -> Script:
        self.replies.append((status, body, headers or {}, delay))
        return self

    def handle(self, request: Request) -> Response:
        headers = {name.lower(): value for name, value in request.headers.items()}
        data = request.get_data()
        self.seen.append(Seen(headers, json.loads(data) if data else {}))
        if not self.replies:
            return Response("unexpected extra request", status=599)
        status, body, headers, delay = (
            self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        )
        if delay:
            time.sleep(delay)
        return Response(
            json.dumps(body),
            status=status,
            headers={"content-type": "application/json", "x-request-id": "req_test", **headers},
        )


@pytest.fixture(scope="session")
def make_httpserver() -> Iterator[HTTPServer]:
    # Threaded, so a request the client gave up on (a timeout) does not hold up its retry.
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def charts() -> dict[str, bytes]:
    return {"daily": tiny_png((200, 30, 30)), "weekly": tiny_png((30, 30, 200))}


@pytest.fixture
def openai_api(httpserver: HTTPServer) -> Iterator[Script]:
    script = Script()
    httpserver.expect_request(OPENAI_PATH, method="POST").respond_with_handler(script.handle)
    yield script


@pytest.fixture
def anthropic_api(httpserver: HTTPServer) -> Iterator[Script]:
    script = Script()
    httpserver.expect_request(ANTHROPIC_PATH, method="POST").respond_with_handler(script.handle)
    yield script


@pytest.fixture
def models_api(httpserver: HTTPServer) -> Iterator[Script]:
    """GET /v1/models, the list call both SDKs make (`client.models.list()`)."""
    script = Script()
    httpserver.expect_request(MODELS_PATH, method="GET").respond_with_handler(script.handle)
    yield script
