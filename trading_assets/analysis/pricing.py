"""The price table (USD per 1M input/output tokens per model) and the cost of a call."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

PRICE_TABLE_VARIABLE = "LLM_PRICE_TABLE"
_DATED = re.compile(r"-\d{4}-?\d{2}-?\d{2}$")


class PriceTableError(ValueError):
    """The price table cannot be read or does not price a model; the message says the fix."""


class UnpricedModelError(PriceTableError):
    """The price table is fine but does not list the model."""


@dataclass(frozen=True)
class Price:
    input_per_million: float
    output_per_million: float

    def cost_usd(self, input_tokens: int, output_tokens: int) -> float:
        cost = input_tokens * self.input_per_million + output_tokens * self.output_per_million
        return round(cost / 1_000_000, 6)

    def describe(self) -> str:
        return f"${self.input_per_million:g}/${self.output_per_million:g} per 1M tokens in/out"


def default_price_table() -> Path:
    return Path(str(resources.files("trading_assets.analysis").joinpath("prices.toml")))


def load_price_table(path: str | Path | None = None) -> dict[str, dict[str, Price]]:
    """``{provider: {model: Price}}`` from ``path`` (default: the table in the repo)."""
    source = Path(path) if path else default_price_table()
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise PriceTableError(
            f"the LLM price table {source} does not exist: fix {PRICE_TABLE_VARIABLE} or unset it "
            "to use the table in the repo"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise PriceTableError(f"the LLM price table {source} is not valid TOML: {exc}") from exc
    table: dict[str, dict[str, Price]] = {}
    for provider, models in raw.items():
        if not isinstance(models, dict):
            raise PriceTableError(
                f"{source}: '{provider}' must be a table of models, e.g. "
                f'[{provider}."model-name"] with input = and output = prices'
            )
        table[provider] = {}
        for model, entry in models.items():
            try:
                price = Price(float(entry["input"]), float(entry["output"]))
            except (TypeError, KeyError, ValueError) as exc:
                raise PriceTableError(
                    f'{source}: [{provider}."{model}"] needs numeric input = and output = '
                    "(USD per 1M tokens)"
                ) from exc
            if price.input_per_million < 0 or price.output_per_million < 0:
                raise PriceTableError(f'{source}: [{provider}."{model}"] has a negative price')
            table[provider][model] = price
    return table


def price_for(provider: str, model: str, path: str | Path | None = None) -> Price:
    """The price of ``provider``/``model``; PriceTableError naming the fix if it is not listed."""
    source = Path(path) if path else default_price_table()
    models = load_price_table(source).get(provider, {})
    # A dated snapshot costs what its undated name costs.
    price = models.get(model) or models.get(_DATED.sub("", model))
    if price is None:
        raise UnpricedModelError(
            f"{provider} model {model!r} is not in the LLM price table {source}, so its cost "
            f'would be unknown: add [{provider}."{model}"] with input = and output = (USD per 1M '
            f"tokens) to that file, or point {PRICE_TABLE_VARIABLE} at a table that has it"
        )
    return price
