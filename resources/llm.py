"""The analyst that reads the charts: the offline rules (default), OpenAI or Anthropic.

The providers are called through their official SDKs with the SDKs' own retries turned off
(``max_retries=0``): this module retries timeouts, connection errors, 429 and 5xx a bounded
number of times itself, waiting what the server asks for (``retry-after``) or an exponential
backoff with jitter, so every wait and every attempt is logged and counted in the artifact.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import dagster as dg
from pydantic import Field

from resources.llm_errors import (
    call_error,
    error_code,
    redact,
    retry_after_seconds,
    server_message,
)
from trading_assets.analysis import offline
from trading_assets.analysis.adapters import AnthropicChat, OpenAIChat, offline_analysis
from trading_assets.analysis.conversation import (
    AnalysisFailedError,
    Chat,
    LlmCallError,
    converse,
)
from trading_assets.analysis.pricing import (
    Price,
    PriceTableError,
    UnpricedModelError,
    default_price_table,
    price_for,
)
from trading_assets.analysis.request import AnalysisRequest, build_request
from trading_assets.models import LlmAnalysis

__all__ = [
    "AnalysisFailedError",
    "LlmCallError",
    "LlmConfigError",
    "LlmResource",
    "is_local_base_url",
]

SUPPORTED_PROVIDERS = ("offline", "openai", "anthropic")
DEFAULT_MODELS = {
    "offline": offline.OFFLINE_MODEL,
    "openai": "gpt-4.1-mini",
    "anthropic": "claude-sonnet-4-6",
}
DEFAULT_BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
}
KEY_VARIABLES = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
UNPRICED_LOCAL = "unpriced: a local server's model not in the price table, cost recorded as 0"
# For the cost estimate before a backfill: the prompt plus two charts is about 4-5k tokens.
ESTIMATED_INPUT_TOKENS = 6000
REQUESTS_PER_ANALYSIS = 2  # the answer and at most one repair request
_RETRYABLE_STATUS = frozenset({408, 409, 429, 529})  # and every other 5xx
_MAX_BACKOFF_SECONDS = 30.0

_logger = logging.getLogger(__name__)
# Indirection so tests can record the waits instead of sleeping through them.
_sleep: Callable[[float], None] = time.sleep
T = TypeVar("T")
Log = logging.Logger | dg.DagsterLogManager


class LlmConfigError(ValueError):
    """The LLM settings cannot work; the message names the variable to change."""


class LlmResource(dg.ConfigurableResource):
    """LLM_PROVIDER / LLM_MODEL select the analyst; the rest tunes calls to a real provider.

    ``api_base_url`` belongs to ``provider``: a run that switches provider through run config
    talks to that provider's public API.
    """

    provider: str = Field(default="offline", description="offline | openai | anthropic")
    model: str | None = Field(default=None, description="model name; provider default if unset")
    api_base_url: str | None = Field(
        default=None, description="base URL of the provider's API (any OpenAI-compatible server)"
    )
    openai_api_key: str | None = Field(default=None, description="bind with EnvVar only")
    anthropic_api_key: str | None = Field(default=None, description="bind with EnvVar only")
    timeout_seconds: float = Field(default=60.0, gt=0, description="per HTTP request")
    max_attempts: int = Field(
        default=3, ge=1, le=10, description="HTTP attempts per request (timeouts, 429, 5xx)"
    )
    backoff_seconds: float = Field(default=1.0, ge=0, description="first retry delay; doubles")
    max_retry_after_seconds: float = Field(
        default=60.0, ge=0, description="longest retry-after this run waits before failing"
    )
    max_output_tokens: int = Field(default=2048, ge=256, le=32_000)
    price_table_path: str | None = Field(
        default=None, description="TOML price table; the one in the repo if unset"
    )

    def __repr_args__(self) -> Any:
        # repr() lands in logs and validation errors: never with a key.
        for name, value in super().__repr_args__():
            secret = name.endswith("_api_key") and value and not isinstance(value, dg.EnvVar)
            yield name, ("***" if secret else value)

    # -- settings -----------------------------------------------------------------------------

    def provider_name(self, override: str | None = None) -> str:
        raw = self.provider if override is None else override
        provider = raw.strip().lower()
        if provider not in SUPPORTED_PROVIDERS:
            source = "LLM_PROVIDER" if override is None else "llm_analysis run config provider"
            raise LlmConfigError(
                f"{source}={raw!r} is not a provider: use one of {', '.join(SUPPORTED_PROVIDERS)}"
            )
        return provider

    def model_name(self, provider: str | None = None, override: str | None = None) -> str:
        chosen = self.provider_name(provider)
        if chosen == "offline":
            return offline.OFFLINE_MODEL
        if override and override.strip():
            return override.strip()
        # LLM_MODEL names a model of LLM_PROVIDER; another provider gets its own default.
        if self.model and self.model.strip() and chosen == self.provider_name():
            return self.model.strip()
        return DEFAULT_MODELS[chosen]

    def base_url(self, provider: str) -> str:
        if self.api_base_url and self.api_base_url.strip() and provider == self.provider_name():
            url = self.api_base_url.strip()
        else:
            url = DEFAULT_BASE_URLS[provider]
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise LlmConfigError(
                f"LLM_API_BASE_URL={shown_url(url)!r} is not an http(s) URL: use e.g. "
                "https://api.openai.com/v1 or http://localhost:11434/v1"
            )
        return url

    def api_key(self, provider: str) -> str:
        variable = KEY_VARIABLES[provider]
        key = self.openai_api_key if provider == "openai" else self.anthropic_api_key
        if not key or not key.strip():
            raise LlmConfigError(
                f"the {provider} analyst needs an API key and {variable} is not set: "
                f"export {variable}=... (or unset LLM_PROVIDER to use the offline analyst)"
            )
        return key.strip()

    def model_price(self, provider: str, model: str) -> Price | None:
        """The model's price, or None for a model of a local OpenAI-compatible server that the
        table does not list (its cost is recorded as 0 with ``priced: false``).

        A model of a public API missing from the table is refused (LlmConfigError naming the
        entry to add): its cost would be real and unknown. A broken table is refused either way.
        """
        try:
            return price_for(provider, model, self.price_table_path)
        except UnpricedModelError as exc:
            if self.serves_locally(provider):
                return None
            raise LlmConfigError(str(exc)) from exc
        except PriceTableError as exc:
            raise LlmConfigError(str(exc)) from exc

    def serves_locally(self, provider: str) -> bool:
        """Whether ``provider``'s requests go to a local OpenAI-compatible server."""
        return provider == "openai" and is_local_base_url(self.base_url(provider))

    def price_table(self) -> str:
        return self.price_table_path or str(default_price_table())

    def describe(self) -> str:
        provider = self.provider_name()
        model = self.model_name()
        if provider == "offline":
            return f"offline ({model}, deterministic rules, no LLM)"
        variable = KEY_VARIABLES[provider]
        key = self.openai_api_key if provider == "openai" else self.anthropic_api_key
        try:
            found = self.model_price(provider, model)
        except LlmConfigError:
            price = f"NOT PRICED in {self.price_table()} (runs will fail until it is added)"
        else:
            price = found.describe() if found else UNPRICED_LOCAL
        return (
            f"{provider} ({model} at {shown_url(self.base_url(provider))}; {variable} "
            f"{'set' if key else 'NOT SET (required)'}; timeout {self.timeout_seconds:g} s, "
            f"{self.max_attempts} attempts; {price})"
        )

    def estimate_cost_usd(
        self, partitions: int, provider: str | None = None, model: str | None = None
    ) -> float:
        """An upper estimate for ``partitions`` fresh analyses (cached replays cost nothing)."""
        chosen = self.provider_name(provider)
        if chosen == "offline":
            return 0.0
        price = self.model_price(chosen, self.model_name(chosen, model))
        if price is None:
            return 0.0
        per_request = price.cost_usd(ESTIMATED_INPUT_TOKENS, self.max_output_tokens)
        return round(partitions * REQUESTS_PER_ANALYSIS * per_request, 4)

    # -- analysis -----------------------------------------------------------------------------

    def prepare(
        self,
        *,
        symbol: str,
        as_of: dt.date,
        indicators: dict[str, float | None],
        charts: dict[str, bytes],
        provider: str | None = None,
        model: str | None = None,
    ) -> AnalysisRequest:
        """The request to send; fails here, before any work, if a key, URL or price is missing."""
        chosen = self.provider_name(provider)
        model_name = self.model_name(chosen, model)
        endpoint = ""
        if chosen != "offline":
            self.api_key(chosen)
            endpoint = shown_url(self.base_url(chosen))
            self.model_price(chosen, model_name)
        return build_request(
            symbol=symbol,
            as_of=as_of,
            provider=chosen,
            model=model_name,
            indicators=indicators,
            charts=charts,
            endpoint=endpoint,
        )

    def analyse(self, request: AnalysisRequest, log: Log | None = None) -> LlmAnalysis:
        """The model's validated reading of ``request``.

        Raises LlmCallError when no answer came back (after the bounded retries) and
        AnalysisFailedError, carrying every raw response, when the answers are not usable.
        """
        if request.provider == "offline":
            return offline_analysis(request)
        price = self.model_price(request.provider, request.model)
        with self._chat(request, log or _logger) as chat:
            return converse(chat, request, price)

    def list_models(self, timeout_seconds: float, log: Log | None = None) -> list[str]:
        """The ids of the models the configured provider serves: one models-list request (no
        tokens spent), each try within ``timeout_seconds``, at most one retry.

        LlmConfigError when a key or URL is missing; LlmCallError saying what to check (the key,
        the URL, the network) when no list came back. Neither ever holds the key.
        """
        provider = self.provider_name()
        if provider == "offline":
            return [offline.OFFLINE_MODEL]
        quick = self.model_copy(
            update={
                "timeout_seconds": min(self.timeout_seconds, timeout_seconds),
                "max_attempts": min(self.max_attempts, 2),
                "max_retry_after_seconds": min(self.max_retry_after_seconds, timeout_seconds),
            }
        )
        with quick._sdk(provider, log or _logger) as (client, call):
            if provider == "openai":
                page, _, _ = call(lambda: client.models.list())
            else:
                page, _, _ = call(lambda: client.models.list(limit=1000))
        # The first page only: one request, and every provider's list fits in it.
        return [model.id for model in page.data]

    @contextmanager
    def _sdk(self, provider: str, log: Log) -> Iterator[tuple[Any, Callable[..., Any]]]:
        """The provider's SDK client (base URL, key, timeout; SDK retries off) and ``call``,
        which sends one request through this resource's bounded retries."""
        import anthropic
        import openai

        key, base_url = self.api_key(provider), self.base_url(provider)

        def call(send: Callable[[], T]) -> tuple[T, int, float]:
            return self._call(send, provider=provider, base_url=base_url, secret=key, log=log)

        sdk = openai.OpenAI if provider == "openai" else anthropic.Anthropic
        with sdk(
            api_key=key, base_url=base_url, timeout=self.timeout_seconds, max_retries=0
        ) as client:
            yield client, call

    @contextmanager
    def _chat(self, request: AnalysisRequest, log: Log) -> Iterator[Chat]:
        with self._sdk(request.provider, log) as (client, call):
            chat = OpenAIChat if request.provider == "openai" else AnthropicChat
            yield chat(client, request, self.max_output_tokens, call)

    def _call(
        self, send: Callable[[], T], *, provider: str, base_url: str, secret: str, log: Log
    ) -> tuple[T, int, float]:
        """``send()`` with bounded retries: (result, retries it took, latency of the last try)."""
        import anthropic
        import openai

        for attempt in range(1, self.max_attempts + 1):
            started = time.perf_counter()
            try:
                result = send()
            except (openai.APIError, anthropic.APIError) as exc:
                failure = exc
            else:
                return result, attempt - 1, (time.perf_counter() - started) * 1000
            reason, retryable, wait = self._diagnose(failure, provider, base_url)
            if not retryable:
                raise call_error(reason, secret)
            if attempt == self.max_attempts:
                gave_up = f"{reason}; gave up after {attempt} attempts (LLM_MAX_ATTEMPTS)"
                raise call_error(gave_up, secret)
            if wait is not None and wait > self.max_retry_after_seconds:
                too_long = (
                    f"{reason}; the server asks to wait {wait:.0f} s, longer than the "
                    f"{self.max_retry_after_seconds:g} s a run waits: try again later"
                )
                raise call_error(too_long, secret)
            delay = wait if wait is not None else self._backoff(attempt)
            message = f"{reason}; retry {attempt} of {self.max_attempts - 1} in {delay:.2f} s"
            log.warning(redact(message, secret))
            _sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises")

    def _backoff(self, attempt: int) -> float:
        # Exponential with jitter, so parallel partitions do not retry in lock step.
        base = min(self.backoff_seconds * 2 ** (attempt - 1), _MAX_BACKOFF_SECONDS)
        return base * (0.5 + random.random() / 2)

    def _diagnose(
        self, exc: Exception, provider: str, base_url: str
    ) -> tuple[str, bool, float | None]:
        """(what went wrong and what to check, retryable?, server-requested wait in seconds)."""
        import anthropic
        import openai

        who = f"{provider} at {shown_url(base_url)}"
        if isinstance(exc, openai.APITimeoutError | anthropic.APITimeoutError):
            return (
                f"{who} did not answer within {self.timeout_seconds:g} s (LLM_TIMEOUT_SECONDS)",
                True,
                None,
            )
        if isinstance(exc, openai.APIConnectionError | anthropic.APIConnectionError):
            return f"cannot reach {who}: check LLM_API_BASE_URL and the network", True, None
        if isinstance(exc, openai.APIStatusError | anthropic.APIStatusError):
            status, detail = exc.status_code, server_message(exc)
            if status in (401, 403):
                variable = KEY_VARIABLES[provider]
                reason = f"{who} rejected the API key (HTTP {status}: {detail}): check {variable}"
                return reason, False, None
            if status == 429 and error_code(exc) == "insufficient_quota":
                # OpenAI's "out of credit" is a 429 too, but waiting does not fix it.
                variable = KEY_VARIABLES[provider]
                reason = (
                    f"{who} says the account has no quota left (HTTP 429: {detail}): check the "
                    f"plan and billing of the account {variable} belongs to"
                )
                return reason, False, None
            if status == 404:
                return (
                    f"{who} has no such model or endpoint (HTTP 404: {detail}): check LLM_MODEL "
                    "and LLM_API_BASE_URL",
                    False,
                    None,
                )
            if status in _RETRYABLE_STATUS or status >= 500:
                wait = retry_after_seconds(exc.response.headers)
                return f"{who} answered HTTP {status} ({detail})", True, wait
            return f"{who} rejected the request (HTTP {status}: {detail})", False, None
        unreadable = f"{who} sent an answer the SDK cannot read ({type(exc).__name__}: {exc})"
        return unreadable, False, None


def is_local_base_url(url: str) -> bool:
    """Whether ``url`` is a server on this machine or a private network name: a loopback address
    (``localhost``, 127.0.0.0/8, ``::1``) or a host name without a dot (a Docker Compose service
    such as ``ollama:11434``, a LAN machine name).

    Deliberately narrow: any other host, private IP addresses included, counts as a public API
    whose models must be priced.
    """
    host = (urlsplit(url.strip()).hostname or "").lower()
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost" or host.endswith(".localhost") or "." not in host


def shown_url(url: str) -> str:
    """``url`` without credentials or query (either can carry a key), for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


