"""Bad input at the command line, each said in one line, and nothing half-written after it.

The settings table is in tests/resources/test_settings.py; downstream-of-a-failed-check cases
are in tests/test_checks.py; the spool on a full disk in tests/io_managers/test_spool.py.
Here: arguments, settings and services down as `trading-signals run` meets them.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import dagster as dg
import pytest

from tests.conftest import TRADING_DAY
from tests.servers import free_port
from tests.test_cli import REPO, cli_env  # noqa: F401  (the fixture)
from trading_assets.cli import main
from trading_assets.environment import resources_from_environment
from trading_assets.tags import PREFLIGHT_TAG

DOWN = f"127.0.0.1:{free_port()}"  # nothing listens here

# (argv, environment, exit code, what stderr says in one line)
CASES = [
    # Arguments: no prefix matching, so a typo is an error, never a run of the whole watchlist.
    (["run", "--dat", "2025-06-02"], {}, 2, "unrecognized arguments: --dat"),
    (["run", "--symbol", "TSLA"], {}, 2, "unrecognized arguments: --symbol"),
    (["artifacts", "show", "1", "--pay"], {}, 2, "unrecognized arguments: --pay"),
    (["backfill", "--start", "2025-05-01", "--end", "2025-05-02", "--work", "2"], {}, 2,
     "unrecognized arguments: --work"),
    (["run", "--symbols", "TS LA"], {}, 2, "not a ticker symbol"),
    (["run", "--date", "2025-13-01"], {}, 2, "--date '2025-13-01' is not a date"),
    (["run", "--date", "2025-06-01"], {}, 2, "Sunday"),
    # Settings: every problem found before anything runs, each naming variable and value.
    (["run"], {"MAX_POSITION_PCT": "-5"}, 2, "MAX_POSITION_PCT='-5' must be greater than 0"),
    (["run"], {"PAPER_STARTING_CASH": "0"}, 2, "PAPER_STARTING_CASH='0' must be greater than 0"),
    (["run"], {"TRADING_MODE": "live"}, 2, "TRADING_MODE='live' is not a trading mode"),
    (["run"], {"TRADING_MODE": "ibkr-live", "IBKR_PORT": "4001"}, 2, "IBKR_LIVE_CONFIRM"),
    (["run"], {"LLM_PROVIDER": "foo"}, 2, "LLM_PROVIDER='foo' is not a provider"),
    (["run"], {"DATABASE_URL": "nonsense"}, 2, "DATABASE_URL='nonsense' is not a database URL"),
    (["run"], {"WORKFLOW_SCHEDULE": "99 * * *"}, 2, "WORKFLOW_SCHEDULE='99 * * *' is not a"),
    (["config"], {"MAX_ORDERS_PER_DAY": "many"}, 2, "MAX_ORDERS_PER_DAY='many'"),
    (["doctor"], {"MIN_RISK_REWARD": "-1"}, 2, "MIN_RISK_REWARD='-1'"),
    # Services down: named in seconds by the pre-flight, before the first step.
    (["run", "--date", "2025-06-02"], {"TRADING_MODE": "ibkr-paper", "IBKR_PORT": DOWN[10:]}, 3,
     f"gateway: nothing answers at {DOWN}"),
    (["run", "--date", "2025-06-02"],
     {"DATABASE_URL": f"postgresql+psycopg2://u:Bad-Input-S3cret@{DOWN}/x"}, 3,
     f"database: cannot reach postgresql+psycopg2://u:***@{DOWN}/x"),
    (["run", "--date", "2025-06-02"],
     {"LLM_PROVIDER": "openai", "OPENAI_API_KEY": "sk-bad-input-key",
      "LLM_API_BASE_URL": f"http://{DOWN}/v1", "LLM_MODEL": "gpt-4.1-mini"}, 3,
     f"llm: cannot reach openai at http://{DOWN}/v1"),
    (["run", "--date", "2025-06-02"],
     {"MINIO_ENDPOINT": DOWN, "MINIO_ACCESS_KEY": "k", "MINIO_SECRET_KEY": "bad-input-secret"},
     3, "objects: "),
    (["backfill", "--start", "2025-06-02", "--end", "2025-06-02", "--yes"],
     {"DATABASE_URL": f"postgresql+psycopg2://u:p@{DOWN}/x"}, 3, "database: cannot reach"),
]


@pytest.mark.parametrize(("argv", "env", "code", "message"), CASES,
                         ids=[" ".join(c[0][:2]) + " " + ",".join(c[1]) for c in CASES])
def test_bad_input_is_one_line_and_nothing_is_half_written(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],  # noqa: F811
    argv: list[str], env: dict[str, str], code: int, message: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    started = time.monotonic()
    try:
        returned = main(argv)
    except SystemExit as exit_:  # argparse's own usage error
        returned = exit_.code
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    assert returned == code, err
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 4, err
    for secret in ("Bad-Input-S3cret", "sk-bad-input-key", "bad-input-secret"):
        assert secret not in err
    # A guard against hanging on a dead service (minutes), not a speed target (make bench):
    # about 3 s quiet, 17 s seen while the parallel suite loads both cores.
    assert elapsed < 45, f"{elapsed:.1f} s"
    # Nothing half-written: no artifact row, no object, no Dagster run.
    database = cli_env / "data" / "artifacts.db"
    if database.exists():
        with sqlite3.connect(database) as connection:
            assert connection.execute("SELECT count(*) FROM artifacts").fetchone() == (0,)
    objects = cli_env / "data" / "objects"
    stored = [p for p in objects.rglob("*") if p.is_file() and "_doctor" not in p.parts]
    assert stored == []


def test_make_run_with_the_gateway_down_fails_in_seconds_naming_it(tmp_path: Path) -> None:
    port = DOWN.split(":")[1]
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "DATABASE_URL")}
    env.update(TRADING_DATA_DIR=str(tmp_path / "data"), DAGSTER_HOME=str(tmp_path / "home"),
               TRADING_MODE="ibkr-paper", IBKR_PORT=port)
    started = time.monotonic()
    proc = subprocess.run(["make", "--no-print-directory", "run"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    elapsed = time.monotonic() - started
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert proc.returncode != 0
    # Seconds, not the minutes it once took (113 s): about 7 s on a quiet machine, 18-39 s while
    # the parallel suite loads both cores (make, uv, the CLI's imports and the 5 s connect
    # timeout). A guard against the hang, not a speed target (those live in make bench).
    assert elapsed < 75, f"{elapsed:.1f} s"
    assert len(lines) < 30, "\n".join(lines)
    tail = "\n".join(lines[-3:])
    assert f"127.0.0.1:{port}" in tail and "TWS or IB Gateway" in tail and "IBKR_PORT" in tail


def test_output_into_a_closed_pipe_ends_quietly(cli_env: Path) -> None:  # noqa: F811
    # `trading-signals ... | head`: the reader is gone before the command writes.
    proc = subprocess.Popen(
        [sys.executable, "-c", "from trading_assets.cli import entry; entry()", "config"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ),
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert "Traceback" not in err and "BrokenPipeError" not in err


def test_a_run_not_launched_by_the_command_line_checks_the_gateway_in_its_first_step(
    data_env: dict[str, str], instance: dg.DagsterInstance
) -> None:
    port = DOWN.split(":")[1]
    preflight = resources_from_environment(
        {**data_env, "TRADING_MODE": "ibkr-paper", "IBKR_PORT": port})["preflight"]

    def context(tags: dict[str, str]) -> Any:  # what Preflight reads of an asset's context
        return SimpleNamespace(run=SimpleNamespace(tags=tags), instance=instance)

    started = time.monotonic()
    with pytest.raises(dg.Failure) as failure:
        preflight.require(context({}))  # a scheduled run
    assert time.monotonic() - started < 15  # the 5 s connect timeout, room for a loaded machine
    message = failure.value.description or ""
    assert message.startswith("stopped before fetching any market data")
    assert f"gateway: nothing answers at 127.0.0.1:{port}" in message
    # Not checked again after the command line's pre-flight, nor in a backfill (never sent).
    preflight.require(context({PREFLIGHT_TAG: "passed"}))
    preflight.require(context({"dagster/backfill": "abc"}))


def test_a_failed_run_says_its_first_failed_check_in_one_line(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],  # noqa: F811
) -> None:
    import pandas as pd

    from trading_assets.market_data.synthetic import synthetic_bars

    folder = cli_env / "market"
    folder.mkdir()
    bars = synthetic_bars("TSLA", TRADING_DAY, 300).bars.drop(pd.Timestamp("2025-05-01"))
    bars.reset_index().to_csv(folder / "TSLA.csv", index=False)
    monkeypatch.setenv("MARKET_DATA_SOURCE", "csv")
    monkeypatch.setenv("MARKET_DATA_DIR", str(folder))
    assert main(["run", "--date", str(TRADING_DAY), "--symbols", "TSLA"]) == 1
    captured = capsys.readouterr()
    assert (
        "  FAILED: check market_data_no_missing_days failed: 1 trading day has no bar: "
        "2025-05-01; fix the source (MARKET_DATA_SOURCE) and re-materialize market_data"
    ) in captured.out
    assert "/runs/" in captured.out  # the run's page in the Dagster UI
    everything = captured.out + captured.err
    assert "Traceback" not in everything and "Not executing" not in everything
    assert len(everything.strip().splitlines()) < 15
