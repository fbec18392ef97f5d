"""`trading-signals` as a user runs it: run, artifacts, config, and bad input."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from trading_assets.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_mlflow_uri: str) -> Path:
    for name in ("DATABASE_URL", "STOCK_SYMBOLS", "LLM_PROVIDER", "MARKET_DATA_SOURCE",
                 "TRADING_MODE", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    # Never the developer's MLflow server; the session's store (tests/conftest.py) is made once.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", shared_mlflow_uri)
    monkeypatch.setenv("TRADING_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    return tmp_path


def test_run_prints_artifacts_signal_and_order(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--date", "2025-06-02", "--symbols", "tsla,nvda"]) == 0
    out = capsys.readouterr().out
    assert "registered symbol partitions: TSLA, NVDA" in out
    for symbol in ("TSLA", "NVDA"):
        assert f"== {symbol} 2025-06-02" in out
    assert out.count("  signal: ") == 2 and out.count("  order:  ") == 2
    assert out.count("file://") == 14
    assert "offline/offline-rules-v1" in out

    assert main(["artifacts", "--symbol", "tsla", "--type", "chart"]) == 0
    listing = capsys.readouterr().out
    assert listing.count("2025-06-02|TSLA") == 2

    assert main(["artifacts", "show", "1", "--payload"]) == 0
    assert '"step_name": "market_data"' in capsys.readouterr().out


def test_show_an_llm_artifact_prints_prompt_and_response(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--date", "2025-06-02", "--symbols", "TSLA"]) == 0
    capsys.readouterr()
    assert main(["artifacts", "list", "--type", "llm"]) == 0
    artifact_id = capsys.readouterr().out.splitlines()[1].split()[0]
    assert main(["artifacts", "show", artifact_id]) == 0
    out = capsys.readouterr().out
    assert "--- prompt" in out and "--- response" in out and '"confidence_score"' in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--symbols", "TS|LA"], "not a ticker symbol"),
        (["run", "--symbols", "TSLA,"], "empty symbol"),
        (["run", "--date", "2025-07-04"], "not an NYSE trading day"),
        (["run", "--date", "2025-07-05"], "Saturday"),
        (["run", "--date", "2099-01-02"], "in the future"),
        (["run", "--date", "yesterday"], "not a date"),
        (["run", "--date", "2023-06-01"], "before the first date partition 2024-01-02"),
        (["verify", "--start", "2025-06-03", "--end", "2025-06-02"], "is after --end"),
        (["artifacts", "show", "999"], "no artifact #999"),
    ],
)
def test_bad_input_names_the_problem(
    cli_env: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_bad_environment_is_reported(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STOCK_SYMBOLS", "TSLA,[NVDA]")
    assert main(["run"]) == 2
    assert "STOCK_SYMBOLS" in capsys.readouterr().err
    monkeypatch.setenv("LLM_PROVIDER", "oracle")
    assert main(["config"]) == 2
    assert "LLM_PROVIDER='oracle'" in capsys.readouterr().err


def test_config_shows_where_things_go_with_secrets_masked(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret")
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg2://bob:hunter2@db.example:5432/trades")
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out and "sk-very-secret" not in out
    assert "bob:***@db.example:5432/trades" in out
    assert "OPENAI_API_KEY" in out and "set (hidden)" in out
    assert "synthetic" in out and "offline" in out and "paper simulator" in out
    assert str(cli_env / "data" / "objects") in out


@pytest.mark.integration
def test_make_run_as_the_readme_says(tmp_path: Path) -> None:
    env = {
        k: v for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "STOCK_SYMBOLS", "LLM_PROVIDER", "MARKET_DATA_SOURCE",
                     "TRADING_MODE", "VIRTUAL_ENV")
    }
    env.update(TRADING_DATA_DIR=str(tmp_path / "data"), DAGSTER_HOME=str(tmp_path / "home"))
    proc = subprocess.run(["make", "run"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "== TSLA" in proc.stdout and "== NVDA" in proc.stdout
    assert (tmp_path / "data" / "artifacts.db").exists()
    assert (tmp_path / "home" / "dagster.yaml").exists()
    runs = list((tmp_path / "home").glob("**/runs.db")) + list(
        (tmp_path / "home").glob("**/*.db"))
    assert runs, "the run must be recorded in the Dagster instance `make ui` uses"


def test_backfill_runs_every_partition_with_progress_and_tags(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import dagster as dg

    from trading_assets.tags import BACKFILL_TAG

    argv = ["backfill", "--symbols", "TSLA,NVDA", "--start", "2025-04-15", "--end",
            "2025-04-23", "--workers", "2", "--yes"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    # 6 sessions (Good Friday 2025-04-18 is closed) x 2 symbols
    assert "backfill: 12 partitions (2 symbols x 6 trading days" in out
    assert "estimated LLM cost: $0.00" in out
    assert "[12/12]" in out and "done: 12 succeeded, 0 failed" in out
    assert "2025-04-18" not in out
    backfill_id = re.search(r"backfill (cli-\S+):", out).group(1)
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs(dg.RunsFilter(tags={BACKFILL_TAG: backfill_id}))
        # Ranged runs per symbol, as a Dagster backfill runs them: one over the six days, and
        # for the first worker's symbol its first day alone (the other worker waits for that
        # run only, which creates the new folder's schemas), then the other five.
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
        ranges = sorted((r.tags["dagster/asset_partition_range_start"],
                         r.tags["dagster/asset_partition_range_end"]) for r in runs)
        by_symbol: dict[str, list[tuple[str, str]]] = {}
        for start, end in ranges:
            by_symbol.setdefault(start.split("|")[1], []).append((start[:10], end[:10]))
        assert sorted(by_symbol.values()) == [
            [("2025-04-15", "2025-04-15"), ("2025-04-16", "2025-04-23")],
            [("2025-04-15", "2025-04-23")],
        ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["backfill", "--start", "2025-05-02", "--end", "2025-05-01"], "is after --end"),
        (["backfill", "--start", "2025-05-01", "--end", "2099-05-01"], "has not closed yet"),
        (["backfill", "--start", "2025-07-04", "--end", "2025-07-04"], "no NYSE trading day"),
        (["backfill", "--start", "May 1", "--end", "2025-07-04"], "--start 'May 1' is not a date"),
        (["backfill", "--start", "2023-12-01", "--end", "2024-01-05"], "before the first date"),
    ],
)
def test_backfill_bad_input(
    cli_env: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main([*argv, "--yes"]) == 2
    assert message in capsys.readouterr().err
