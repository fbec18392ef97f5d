"""Response bodies with the exact shape the OpenAI and Anthropic APIs send, and request readers."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

from PIL import Image

OPENAI_MODEL = "gpt-4.1-mini"
ANTHROPIC_MODEL = "claude-sonnet-4-6"

# The answer a careful model gives for TSLA on the test day: a valid HOLD.
VALID_SIGNAL: dict[str, Any] = {
    "action": "HOLD",
    "confidence_score": 62,
    "reasoning": "Price sits between the 20- and 50-day averages; MACD is flat.",
    "key_factors": ["close between SMA 20 and SMA 50", "MACD histogram near zero"],
    "trend": "NEUTRAL",
    "support": 180.5,
    "resistance": 210.25,
    "entry_price": None,
    "stop_loss": None,
    "take_profit": None,
    "position_size_pct": 0,
}
# Valid JSON, but a BUY whose stop is above the entry: the schema's rules reject it.
BAD_BUY: dict[str, Any] = {
    **VALID_SIGNAL,
    "action": "BUY",
    "confidence_score": 70,
    "trend": "BULLISH",
    "entry_price": 200.0,
    "stop_loss": 210.0,
    "take_profit": 220.0,
    "position_size_pct": 5,
}
GOOD_BUY: dict[str, Any] = {**BAD_BUY, "stop_loss": 190.0}


def tiny_png(color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), color).save(buffer, format="PNG")
    return buffer.getvalue()


# -- OpenAI chat completions ----------------------------------------------------------------


def openai_completion(
    content: str | None,
    *,
    refusal: str | None = None,
    finish_reason: str = "stop",
    prompt_tokens: int = 1850,
    completion_tokens: int = 120,
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-BX1c2d3e4f5g6h7i8j9k0",
        "object": "chat.completion",
        "created": 1748900000,
        "model": "gpt-4.1-mini-2025-04-14",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": content,
                    "refusal": refusal,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_6f2eabb9a5",
    }


def openai_error(message: str, type_: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def openai_images(body: dict[str, Any]) -> list[bytes]:
    """The PNGs attached to the first user message, in order."""
    parts = body["messages"][0]["content"]
    urls = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    prefix = "data:image/png;base64,"
    assert all(u.startswith(prefix) for u in urls), urls
    return [base64.b64decode(u.removeprefix(prefix)) for u in urls]


def openai_models(*ids: str) -> dict[str, Any]:
    """GET /v1/models: the models the key may use."""
    return {
        "object": "list",
        "data": [
            {"id": i, "object": "model", "created": 1744316542, "owned_by": "system"} for i in ids
        ],
    }


# -- Anthropic messages ---------------------------------------------------------------------


def anthropic_tool_message(
    tool_input: dict[str, Any],
    *,
    tool_id: str = "toolu_01A09q90qw90lq917835lq9",
    input_tokens: int = 2095,
    output_tokens: int = 210,
) -> dict[str, Any]:
    return _anthropic_message(
        [{"type": "tool_use", "id": tool_id, "name": "record_signal", "input": tool_input}],
        stop_reason="tool_use",
        input_tokens=input_tokens,
        output_tokens=output_tokens,
    )


def anthropic_text_message(text: str, stop_reason: str) -> dict[str, Any]:
    content = [{"type": "text", "text": text}] if text else []
    return _anthropic_message(content, stop_reason=stop_reason, input_tokens=2095, output_tokens=12)


def _anthropic_message(
    content: list[dict[str, Any]], *, stop_reason: str, input_tokens: int, output_tokens: int
) -> dict[str, Any]:
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
            "service_tier": "standard",
        },
    }


def anthropic_error(type_: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": type_, "message": message}}


def anthropic_models(*ids: str) -> dict[str, Any]:
    """GET /v1/models: one page, newest first."""
    return {
        "data": [
            {"type": "model", "id": i, "display_name": i, "created_at": "2025-09-29T00:00:00Z"}
            for i in ids
        ],
        "has_more": False,
        "first_id": ids[0] if ids else None,
        "last_id": ids[-1] if ids else None,
    }


def anthropic_images(body: dict[str, Any]) -> list[bytes]:
    blocks = body["messages"][0]["content"]
    images = [b for b in blocks if b["type"] == "image"]
    assert all(b["source"]["type"] == "base64" for b in images)
    assert all(b["source"]["media_type"] == "image/png" for b in images)
    return [base64.b64decode(b["source"]["data"]) for b in images]


def dumps(body: dict[str, Any]) -> str:
    return json.dumps(body)
