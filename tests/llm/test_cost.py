"""The cost estimate `trading-signals backfill` prints before it launches, from the price table."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from resources.llm import LlmConfigError, LlmResource
from trading_assets.cli import main

# gpt-4.1-mini in prices.toml: $0.40 in / $1.60 out per 1M tokens. An analysis is estimated as
# two requests (the answer and at most one repair) of 6000 tokens in and 2048 tokens out.
GPT_41_MINI_PER_PARTITION = 2 * (6000 * 0.40 + 2048 * 1.60) / 1e6


def test_the_estimate_comes_from_the_price_table() -> None:
    llm = LlmResource(provider="openai")
    assert llm.estimate_cost_usd(26) == pytest.approx(26 * GPT_41_MINI_PER_PARTITION, abs=1e-4)
    assert llm.estimate_cost_usd(26, model="gpt-4.1") > llm.estimate_cost_usd(26)
    assert llm.estimate_cost_usd(26, provider="anthropic") > 0
    assert llm.estimate_cost_usd(26, provider="offline") == 0.0
    assert LlmResource().estimate_cost_usd(26) == 0.0


def test_a_custom_price_table_and_an_unpriced_model(tmp_path: Path) -> None:
    table = tmp_path / "prices.toml"
    table.write_text('[openai."llama3.2-vision"]\ninput = 0.0\noutput = 0.0\n')
    local = LlmResource(provider="openai", model="llama3.2-vision", price_table_path=str(table))
    assert local.estimate_cost_usd(100) == 0.0
    with pytest.raises(LlmConfigError, match=r"add \[openai\.\"gpt-4\.1-mini\"\]"):
        LlmResource(provider="openai", price_table_path=str(table)).estimate_cost_usd(1)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_backfill_prints_the_openai_estimate_and_launches_nothing_on_no(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("DATABASE_URL", "STOCK_SYMBOLS", "LLM_MODEL", "LLM_API_BASE_URL",
                 "LLM_PRICE_TABLE", "MINIO_ENDPOINT", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRADING_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("LLM_PROVIDER", "openai")
    monkeypatch.setenv("OPENAI_API_KEY", "fake-key-never-printed-42")
    monkeypatch.setattr("sys.stdin", _Terminal())
    answers: list[str] = []
    monkeypatch.setattr("builtins.input", lambda prompt: answers.append(prompt) or "n")

    argv = ["backfill", "--symbols", "TSLA,NVDA", "--start", "2025-04-14", "--end", "2025-05-01"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "backfill: 26 partitions" in out
    expected = 26 * GPT_41_MINI_PER_PARTITION
    assert f"estimated LLM cost: ${expected:,.2f} at most" in out and expected > 0.01
    assert "openai (gpt-4.1-mini at https://api.openai.com/v1; OPENAI_API_KEY set" in out
    assert answers == ["launch? [y/N] "] and "not launched" in out
    assert "fake-key-never-printed-42" not in out
    assert not (tmp_path / "dagster_home").exists()  # nothing was launched
