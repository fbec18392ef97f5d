"""What an LLM provider's error means: a one-line reason naming the setting to check, whether a
retry can help, and how long the server asks to wait. Pure functions of the SDKs' errors."""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from trading_assets.analysis.conversation import LlmCallError

if TYPE_CHECKING:
    import anthropic
    import openai


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """The wait a response asks for (retry-after-ms, retry-after seconds or HTTP date), or None."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue
        if math.isfinite(seconds):
            return max(seconds, 0.0)
    value = headers.get("retry-after")
    if value:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        current = time.time() if now is None else now
        return max(when.timestamp() - current, 0.0)
    return None


def server_message(exc: openai.APIStatusError | anthropic.APIStatusError) -> str:

    body = exc.body
    message = None
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
    text = str(message or exc.message or "no message")
    return text if len(text) <= 300 else text[:300] + "..."


def error_code(exc: openai.APIStatusError | anthropic.APIStatusError) -> str | None:
    """The error's ``code`` or ``type`` field (OpenAI: code, Anthropic: error.type), if any."""

    body = exc.body
    inner = body.get("error", body) if isinstance(body, dict) else None
    if not isinstance(inner, dict):
        return None
    code = inner.get("code") or inner.get("type")
    return str(code) if code else None


def redact(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


def call_error(reason: str, secret: str) -> LlmCallError:
    # Deliberately not chained to the SDK error: ``reason`` already carries its status and server
    # message, a server may quote the key back in it, and `trading-signals run` prints a failed
    # step's innermost cause, which must be this message naming the setting to check, not the
    # SDK's bare "Request timed out.".
    return LlmCallError(redact(reason, secret))
