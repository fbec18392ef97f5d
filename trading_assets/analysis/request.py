"""What one analysis sends: prompt, both charts, provider and model, and its cache key."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from trading_assets.analysis.prompt import PROMPT_VERSION, build_prompt

# The prompt calls image 1 the daily chart and image 2 the weekly one: this order is the contract.
CHART_ORDER = ("daily", "weekly")


@dataclass(frozen=True)
class AnalysisRequest:
    symbol: str
    as_of: dt.date
    provider: str
    model: str
    prompt: str
    charts: dict[str, bytes] = field(repr=False)
    indicators: dict[str, float | None]
    prompt_version: str = PROMPT_VERSION
    # The server asked (credentials stripped): two OpenAI-compatible servers may share a model name.
    endpoint: str = ""

    @property
    def image_sha256(self) -> dict[str, str]:
        return {name: hashlib.sha256(png).hexdigest() for name, png in self.charts.items()}

    @property
    def cache_key(self) -> str:
        return cache_key(
            self.provider, self.model, self.prompt, self.image_sha256, self.endpoint
        )

    def recorded(self) -> dict[str, Any]:
        """What every analysis of this request records of it (LlmAnalysis fields)."""
        return {
            "symbol": self.symbol,
            "as_of": self.as_of,
            "provider": self.provider,
            "model_name": self.model,
            "prompt_version": self.prompt_version,
            "prompt": self.prompt,
            "image_sha256": self.image_sha256,
            "indicators": self.indicators,
            "cache_key": self.cache_key,
        }


def cache_key(
    provider: str, model: str, prompt: str, image_sha256: dict[str, str], endpoint: str = ""
) -> str:
    """sha256 of everything that decides the answer: the same key means the same question."""
    canonical = json.dumps(
        {
            "provider": provider,
            "model": model,
            "prompt": prompt,
            "images": image_sha256,
            "endpoint": endpoint,
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def build_request(
    *,
    symbol: str,
    as_of: dt.date,
    provider: str,
    model: str,
    indicators: dict[str, float | None],
    charts: dict[str, bytes],
    endpoint: str = "",
) -> AnalysisRequest:
    if set(charts) != set(CHART_ORDER):
        raise ValueError(
            f"an analysis needs exactly the charts {', '.join(CHART_ORDER)}, got "
            f"{', '.join(sorted(charts)) or 'none'}"
        )
    empty = [name for name in CHART_ORDER if not charts[name]]
    if empty:
        raise ValueError(f"the {', '.join(empty)} chart is empty: re-materialize it")
    return AnalysisRequest(
        symbol=symbol,
        as_of=as_of,
        provider=provider,
        model=model,
        prompt=build_prompt(symbol, as_of, indicators),
        charts={name: charts[name] for name in CHART_ORDER},
        indicators=indicators,
        endpoint=endpoint,
    )
