"""The provider adapters of the ``Chat`` protocol (conversation.py): how a request and its two
charts become an OpenAI chat completion or an Anthropic message, and the offline analyst's
answer as an analysis. The SDK clients and the bounded retries come from the LLM resource
(``call`` sends one request through them); nothing here opens a connection itself.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from trading_assets.analysis import offline
from trading_assets.analysis.conversation import Reply
from trading_assets.analysis.request import AnalysisRequest
from trading_assets.analysis.schema import SCHEMA_NAME, strict_schema
from trading_assets.models import LlmAnalysis

if TYPE_CHECKING:
    import anthropic
    import openai

TOOL_NAME = "record_signal"
# Sends one request through the resource's bounded retries: (result, retries, latency in ms).
Call = Callable[[Callable[[], Any]], tuple[Any, int, float]]


class _ProviderChat:
    """What both adapters hold: the SDK client, the model, the answer's token limit, ``call``."""

    def __init__(self, client: Any, request: AnalysisRequest, max_tokens: int, call: Call) -> None:
        self._client, self._model, self._max_tokens, self._call = (
            client, request.model, max_tokens, call
        )


class OpenAIChat(_ProviderChat):
    """Chat completions with both charts as base64 data URLs and a strict JSON schema."""

    _client: openai.OpenAI

    def __init__(
        self, client: openai.OpenAI, request: AnalysisRequest, max_tokens: int, call: Call
    ) -> None:
        super().__init__(client, request, max_tokens, call)
        images = [
            {"type": "image_url", "image_url": {"url": data_url(png), "detail": "high"}}
            for png in request.charts.values()
        ]
        self.messages: list[dict[str, Any]] = [
            {"role": "user", "content": [{"type": "text", "text": request.prompt}, *images]}
        ]
        self._last = ""

    def send(self) -> Reply:
        completion, retries, latency_ms = self._call(
            lambda: self._client.chat.completions.create(
                model=self._model,
                messages=self.messages,  # type: ignore[arg-type]
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": SCHEMA_NAME, "schema": strict_schema(), "strict": True},
                },
                max_completion_tokens=self._max_tokens,
            )
        )
        raw = completion.model_dump_json()
        usage = completion.usage
        tokens = {
            "input_tokens": usage.prompt_tokens if usage else 0,
            "output_tokens": usage.completion_tokens if usage else 0,
            "latency_ms": latency_ms,
            "retries": retries,
        }
        if not completion.choices:
            self._last = ""
            return Reply(text="", raw=raw, stop_reason="no choices", **tokens)
        choice = completion.choices[0]
        message = choice.message
        refusal = message.refusal
        if refusal is None and choice.finish_reason == "content_filter":
            refusal = "the provider's content filter withheld the answer"
        self._last = message.content or ""
        return Reply(
            text=self._last,
            raw=raw,
            refusal=refusal,
            truncated=choice.finish_reason == "length",
            stop_reason=choice.finish_reason,
            **tokens,
        )

    def add_repair(self, note: str) -> None:
        self.messages += [
            {"role": "assistant", "content": self._last},
            {"role": "user", "content": note},
        ]


class AnthropicChat(_ProviderChat):
    """Messages with both charts as image blocks, the answer forced through one tool call."""

    _client: anthropic.Anthropic

    def __init__(
        self, client: anthropic.Anthropic, request: AnalysisRequest, max_tokens: int, call: Call
    ) -> None:
        super().__init__(client, request, max_tokens, call)
        # Anthropic reads images best when they come before the text that refers to them.
        images = [
            {
                "type": "image",
                "source": {
                    "type": "base64",
                    "media_type": "image/png",
                    "data": base64.b64encode(png).decode("ascii"),
                },
            }
            for png in request.charts.values()
        ]
        self.messages: list[dict[str, Any]] = [
            {"role": "user", "content": [*images, {"type": "text", "text": request.prompt}]}
        ]
        self._tool = {
            "name": TOOL_NAME,
            "description": "Record the trading signal read from the two charts.",
            "input_schema": strict_schema(),
        }
        self._last_content: list[dict[str, Any]] = []
        self._last_tool_id: str | None = None

    def send(self) -> Reply:
        message, retries, latency_ms = self._call(
            lambda: self._client.messages.create(
                model=self._model,
                max_tokens=self._max_tokens,
                messages=self.messages,  # type: ignore[arg-type]
                tools=[self._tool],  # type: ignore[list-item]
                tool_choice={"type": "tool", "name": TOOL_NAME},
            )
        )
        tool = next(
            (b for b in message.content if b.type == "tool_use" and b.name == TOOL_NAME), None
        )
        said = " ".join(b.text for b in message.content if b.type == "text").strip()
        refusal = None
        if message.stop_reason == "refusal":
            refusal = said or "stop_reason refusal"
        elif tool is None and message.stop_reason != "max_tokens":
            refusal = f"no {TOOL_NAME} tool call" + (f"; it wrote: {said}" if said else "")
        if tool is not None:
            self._last_tool_id = tool.id
            self._last_content = [
                {"type": "tool_use", "id": tool.id, "name": tool.name, "input": tool.input}
            ]
        else:
            self._last_tool_id = None
            self._last_content = [{"type": "text", "text": said or "(no answer)"}]
        return Reply(
            text=json.dumps(tool.input) if tool is not None else "",
            raw=message.model_dump_json(),
            refusal=refusal,
            truncated=message.stop_reason == "max_tokens",
            stop_reason=message.stop_reason,
            input_tokens=message.usage.input_tokens,
            output_tokens=message.usage.output_tokens,
            latency_ms=latency_ms,
            retries=retries,
        )

    def add_repair(self, note: str) -> None:
        # A tool call must be answered by its tool_result: the rejection goes back as one.
        if self._last_tool_id is not None:
            reply: list[dict[str, Any]] = [
                {
                    "type": "tool_result",
                    "tool_use_id": self._last_tool_id,
                    "is_error": True,
                    "content": note,
                }
            ]
        else:
            reply = [{"type": "text", "text": note}]
        self.messages += [
            {"role": "assistant", "content": self._last_content},
            {"role": "user", "content": reply},
        ]


def offline_analysis(request: AnalysisRequest) -> LlmAnalysis:
    started = time.perf_counter()
    answer = offline.analyse(request.indicators)
    latency_ms = (time.perf_counter() - started) * 1000
    return LlmAnalysis(
        **request.recorded(),
        response=answer.model_dump_json(indent=2),
        latency_ms=round(latency_ms, 3),
    )


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
