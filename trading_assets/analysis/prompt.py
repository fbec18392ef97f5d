"""The versioned analysis prompt: indicator values and answer schema, as of the partition day."""

from __future__ import annotations

import datetime as dt
import json
from importlib import resources
from string import Template

from trading_assets.analysis.answer import SignalAnswer

PROMPT_VERSION = "signal-v1"

_LABELS: dict[str, str] = {
    "close": "Close",
    "change_1d_pct": "Change 1 day (%)",
    "change_5d_pct": "Change 5 days (%)",
    "change_20d_pct": "Change 20 days (%)",
    "sma_20": "SMA 20",
    "sma_50": "SMA 50",
    "sma_200": "SMA 200",
    "bb_upper": "Bollinger upper",
    "bb_mid": "Bollinger middle",
    "bb_lower": "Bollinger lower",
    "rsi_14": "RSI 14",
    "macd": "MACD",
    "macd_signal": "MACD signal",
    "macd_hist": "MACD histogram",
    "high_20": "20-day high",
    "low_20": "20-day low",
    "volume_avg_20": "Volume, 20-day average",
    "volume_trend": "Volume trend (5-day avg / 20-day avg)",
}


def _template() -> Template:
    text = resources.files("trading_assets.analysis").joinpath(
        f"prompts/{PROMPT_VERSION.replace('-', '_')}.txt"
    )
    return Template(text.read_text(encoding="utf-8"))


def indicator_table(indicators: dict[str, float | None]) -> str:
    lines = []
    for key, label in _LABELS.items():
        value = indicators.get(key)
        shown = "n/a (not enough history)" if value is None else f"{value:,.4f}".rstrip("0")
        lines.append(f"- {label}: {shown.rstrip('.')}")
    return "\n".join(lines)


def build_prompt(symbol: str, as_of: dt.date, indicators: dict[str, float | None]) -> str:
    return _template().substitute(
        symbol=symbol,
        as_of=as_of.isoformat(),
        indicator_table=indicator_table(indicators),
        json_schema=json.dumps(SignalAnswer.model_json_schema(), indent=1, sort_keys=True),
    )
