"""Every setting is judged before anything runs: one line per problem, all of them at once."""

from __future__ import annotations

import os
import shutil
from collections import namedtuple
from pathlib import Path

import dagster as dg
import pytest

import trading_assets.partitions as partitions
from resources.settings_check import MIN_FREE_BYTES
from trading_assets.environment import SettingError, check_settings, resources_from_environment

# Present in every row's environment (or in its bad value): none may be echoed back.
OPENAI_KEY = "sk-test-NEVER-PRINTED-1"
DB_PASSWORD = "hunter2-NEVER-PRINTED"
WEBHOOK_TOKEN = "T0-B0-NEVER-PRINTED"
MINIO_SECRET = "minio-NEVER-PRINTED"
SECRETS = (OPENAI_KEY, DB_PASSWORD, WEBHOOK_TOKEN, MINIO_SECRET)
MINIO = {"MINIO_ENDPOINT": "minio:9000", "MINIO_ACCESS_KEY": "ak", "MINIO_SECRET_KEY": MINIO_SECRET}

BAD_SETTINGS = [
    # numbers where zero or a negative cannot work, out of range, not whole, not a number
    ({"MAX_POSITION_PCT": "-5"},
     "MAX_POSITION_PCT='-5' must be greater than 0: use e.g. MAX_POSITION_PCT=10"),
    ({"PAPER_STARTING_CASH": "0"},
     "PAPER_STARTING_CASH='0' must be greater than 0: use e.g. PAPER_STARTING_CASH=100000"),
    ({"MAX_NOTIONAL_PER_ORDER": "-1"},
     "MAX_NOTIONAL_PER_ORDER='-1' must be greater than 0: use e.g. MAX_NOTIONAL_PER_ORDER=25000"),
    ({"ORDER_FIXED_SHARES": "0"},
     "ORDER_FIXED_SHARES='0' must be greater than 0: use e.g. ORDER_FIXED_SHARES=10"),
    ({"MIN_CONFIDENCE": "150"},
     "MIN_CONFIDENCE='150' must be less than or equal to 100: use e.g. MIN_CONFIDENCE=50"),
    ({"LLM_TIMEOUT_SECONDS": "0"},
     "LLM_TIMEOUT_SECONDS='0' must be greater than 0: use e.g. LLM_TIMEOUT_SECONDS=60"),
    ({"LLM_MAX_ATTEMPTS": "2.5"},
     "LLM_MAX_ATTEMPTS='2.5' must be a valid integer, got a number with a fractional part: use "
     "e.g. LLM_MAX_ATTEMPTS=3"),
    ({"IBKR_PORT": "70000"},
     "IBKR_PORT='70000' must be less than or equal to 65535: use e.g. IBKR_PORT=7497"),
    ({"IBKR_PORT": "seven"}, "IBKR_PORT='seven' is not a number: use e.g. IBKR_PORT=7497"),
    ({"MAX_POSITION_PCT": "nan"},
     "MAX_POSITION_PCT='nan' is not a number: use e.g. MAX_POSITION_PCT=10"),
    ({"MARKET_HISTORY_DAYS": "10"},
     "MARKET_HISTORY_DAYS='10' must be greater than or equal to 30: use e.g. "
     "MARKET_HISTORY_DAYS=520"),
    ({"SLIPPAGE_BPS": "-3"},
     "SLIPPAGE_BPS='-3' must be greater than or equal to 0: use e.g. SLIPPAGE_BPS="),
    ({"EVAL_EXIT_AFTER_SESSIONS": "0"},
     "EVAL_EXIT_AFTER_SESSIONS='0' must be greater than or equal to 1: use e.g. "
     "EVAL_EXIT_AFTER_SESSIONS="),
    ({"MLFLOW_MAX_RETRIES": "99"}, "MLFLOW_MAX_RETRIES='99' is invalid (MLflow retries must be"),
    ({"STORAGE_WRITE_ATTEMPTS": "0"}, "STORAGE_WRITE_ATTEMPTS must be at least 1, got 0"),
    ({"TRADING_ENABLED": "maybe"},
     "TRADING_ENABLED='maybe' is not true or false: use e.g. TRADING_ENABLED=true"),
    # enumerations, judged by the resources' own validators
    ({"TRADING_MODE": "live"},
     "TRADING_MODE='live' is not a trading mode: use one of simulate, ibkr-paper, ibkr-live"),
    ({"TRADING_MODE": "ibkr-live", "IBKR_PORT": "4001"},
     "TRADING_MODE=ibkr-live places real orders with real money and needs a second setting: "
     "IBKR_LIVE_CONFIRM=I-UNDERSTAND-REAL-MONEY"),
    ({"TRADING_MODE": "ibkr-paper", "IBKR_PORT": "4001"},
     "TRADING_MODE=ibkr-paper but IBKR_PORT=4001 is the IB Gateway live port"),
    ({"LLM_PROVIDER": "foo"},
     "LLM_PROVIDER='foo' is not a provider: use one of offline, openai, anthropic"),
    ({"LLM_PROVIDER": "openai", "LLM_API_BASE_URL": "ftp://llm.example/v1"},
     "LLM_API_BASE_URL='ftp://llm.example/v1' is not an http(s) URL: use e.g."),
    ({"MARKET_DATA_SOURCE": "bloomberg"},
     "MARKET_DATA_SOURCE='bloomberg' is not a source: use one of synthetic, csv, ibkr"),
    ({"MARKET_DATA_SOURCE": "csv", "MARKET_DATA_DIR": "/nonexistent/bars"},
     "MARKET_DATA_DIR='/nonexistent/bars' is not a folder: create it"),
    ({"ORDER_SIZING": "shares"},
     "ORDER_SIZING='shares' must be 'percent' or 'fixed': use e.g. ORDER_SIZING=percent"),
    ({"STOCK_SYMBOLS": "TSLA,[NVDA]"}, "STOCK_SYMBOLS: '[NVDA]' is not a ticker symbol"),
    ({"WATCHLIST_FILE": "/nonexistent/watchlist.txt"},
     "WATCHLIST_FILE /nonexistent/watchlist.txt cannot be read"),
    # the schedule and the partitions' start
    ({"WORKFLOW_SCHEDULE": "every day"},
     "WORKFLOW_SCHEDULE='every day' is not a valid 5-field cron expression"),
    ({"WORKFLOW_SCHEDULE": "61 9 * * 1-5"},
     "WORKFLOW_SCHEDULE='61 9 * * 1-5' is not a valid 5-field cron expression (minute hour "
     "day-of-month month day-of-week): use e.g. WORKFLOW_SCHEDULE='0 9 * * 1-5'"),
    ({"TRADING_START_DATE": "2024-13-01"},
     "TRADING_START_DATE='2024-13-01' is not a date: use YYYY-MM-DD, e.g. 2024-01-02"),
    ({"TRADING_START_DATE": "1600-01-01"},
     "TRADING_START_DATE=1600-01-01 is before 1677-09-22, the earliest date the XNYS calendar "
     "has: use 1677-09-22 or later, e.g. 2004-08-19"),
    ({"TRADING_START_DATE": "2099-01-01"}, "TRADING_START_DATE=2099-01-01 is after "),
    # the database and the object store
    ({"DATABASE_URL": "nonsense"},
     "DATABASE_URL='nonsense' is not a database URL: use e.g. DATABASE_URL=sqlite:///"),
    ({"DATABASE_URL": f"mysql://bob:{DB_PASSWORD}@db.example/trades"},
     "DATABASE_URL='mysql://bob:***@db.example/trades' names a mysql database; only SQLite and "
     "PostgreSQL are supported: use e.g. DATABASE_URL="),
    ({"DATABASE_URL": f"bob:{DB_PASSWORD}@db.example/trades"}, "is not a database URL"),
    ({**MINIO, "MINIO_ENDPOINT": "ftp://minio:9000"},
     "MINIO_ENDPOINT='ftp://minio:9000' is not an endpoint: use e.g. MINIO_ENDPOINT=minio:9000"),
    ({**MINIO, "MINIO_ENDPOINT": "minio:9000/bucket"},
     "MINIO_ENDPOINT='minio:9000/bucket' is not host:port: use e.g. MINIO_ENDPOINT=minio:9000"),
    ({**MINIO, "MINIO_BUCKET": "My_Bucket"},
     "MINIO_BUCKET='My_Bucket' is not a valid bucket name"),
    ({**MINIO, "MINIO_SECURE": "perhaps"},
     "MINIO_SECURE='perhaps' is not true or false: use e.g. MINIO_SECURE=false"),
    ({**MINIO, "MINIO_ENDPOINT": "https://s3.example.com", "MINIO_SECURE": "false"},
     "MINIO_ENDPOINT='https://s3.example.com' and MINIO_SECURE='false' disagree"),
    ({"MINIO_ENDPOINT": "minio:9000", "MINIO_SECRET_KEY": MINIO_SECRET},
     "only one of MINIO_ACCESS_KEY / MINIO_SECRET_KEY: set MINIO_ACCESS_KEY too"),
    ({**MINIO, "MINIO_MAX_ATTEMPTS": "many"},
     "MINIO_MAX_ATTEMPTS='many' is not a number: use e.g. MINIO_MAX_ATTEMPTS=3"),
    # the alert webhook: its path is the token
    ({"ALERT_WEBHOOK_URL": f"hooks.slack.com/services/{WEBHOOK_TOKEN}"},
     "ALERT_WEBHOOK_URL='(hidden)' is not an http(s) URL: use e.g. ALERT_WEBHOOK_URL=https://"),
    ({"ALERT_WEBHOOK_URL": f"ftp://hooks.example/{WEBHOOK_TOKEN}"},
     "ALERT_WEBHOOK_URL='ftp://hooks.example/...' is not an http(s) URL"),
    # the base of the artifact_page links in the Dagster UI
    ({"ARTIFACT_BROWSER_URL": "browser:8000"},
     "ARTIFACT_BROWSER_URL='browser:8000' is not an http(s) URL: use the address the artifact "
     "browser (`make web`) is reached at, e.g. ARTIFACT_BROWSER_URL=http://127.0.0.1:8000"),
]


def _assert_one_line_each_and_no_secret(problems: list[str]) -> None:
    assert problems
    for line in problems:
        assert line and "\n" not in line and line == line.strip()
    text = "\n".join(problems)
    assert not [s for s in SECRETS if s in text], text


@pytest.mark.parametrize(
    ("bad", "fragment"), BAD_SETTINGS, ids=[next(iter(b)) for b, _ in BAD_SETTINGS]
)
def test_a_bad_setting_is_one_line_naming_the_variable_value_and_example(
    data_env: dict[str, str], bad: dict[str, str], fragment: str
) -> None:
    env = {**data_env, "OPENAI_API_KEY": OPENAI_KEY, **bad}
    problems = check_settings(env)
    _assert_one_line_each_and_no_secret(problems)
    assert [line for line in problems if fragment in line], problems


def test_the_embedded_defaults_have_no_problem(data_env: dict[str, str]) -> None:
    assert check_settings(data_env) == []


def test_several_problems_are_reported_together_by_check_and_by_the_resources(
    data_env: dict[str, str],
) -> None:
    env = {
        **data_env,
        "MAX_POSITION_PCT": "-5",
        "PAPER_STARTING_CASH": "0",
        "TRADING_MODE": "live",
        "LLM_PROVIDER": "foo",
        "MARKET_DATA_SOURCE": "bar",
        "DATABASE_URL": f"postgresql://bob:{DB_PASSWORD}@db:5432/x?sslmode=oops&connect_timeout=",
        "WORKFLOW_SCHEDULE": "0 9 * *",
        "TRADING_START_DATE": "yesterday",
        "IBKR_PORT": "abc",
        "ALERT_WEBHOOK_URL": f"https://hooks.slack.com/services/{WEBHOOK_TOKEN}",
        "OPENAI_API_KEY": OPENAI_KEY,
    }
    problems = check_settings(env)
    _assert_one_line_each_and_no_secret(problems)
    named = {line.split("=")[0].split(":")[0] for line in problems}
    assert named == {
        "MAX_POSITION_PCT", "PAPER_STARTING_CASH", "TRADING_MODE", "LLM_PROVIDER",
        "MARKET_DATA_SOURCE", "WORKFLOW_SCHEDULE", "TRADING_START_DATE", "IBKR_PORT",
    }, problems
    # What `trading-signals config` (and the code location) gets: one error, the same lines.
    with pytest.raises(SettingError) as err:
        resources_from_environment(env)
    assert err.value.problems == problems
    assert str(err.value).splitlines() == problems


def test_a_bad_port_is_not_judged_again_on_its_default(data_env: dict[str, str]) -> None:
    env = {**data_env, "TRADING_MODE": "ibkr-live", "IBKR_PORT": "x",
           "IBKR_LIVE_CONFIRM": "I-UNDERSTAND-REAL-MONEY"}
    assert check_settings(env) == ["IBKR_PORT='x' is not a number: use e.g. IBKR_PORT=7497"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod")
def test_a_read_only_data_folder_is_named(tmp_path: Path, data_env: dict[str, str]) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        problems = check_settings({**data_env, "TRADING_DATA_DIR": str(folder / "data")})
    finally:
        folder.chmod(0o700)
    assert problems == [
        f"TRADING_DATA_DIR='{folder / 'data'}' cannot be written: {folder} is read-only; make it "
        "writable or use e.g. TRADING_DATA_DIR=/srv/trading-data"
    ]


def test_a_read_only_data_folder_is_named_as_root_too(
    tmp_path: Path, data_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A read-only mount refuses root as well; access(2) is what says so.
    folder = tmp_path / "ro"
    folder.mkdir()
    access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != folder and access(p, mode))
    problems = check_settings({**data_env, "TRADING_DATA_DIR": str(folder)})
    assert problems == [
        f"TRADING_DATA_DIR='{folder}' cannot be written: {folder} is read-only; make it "
        "writable or use e.g. TRADING_DATA_DIR=/srv/trading-data"
    ]


def test_a_full_disk_names_the_folder_and_the_free_space(
    tmp_path: Path, data_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10**10, 10**10, 5 * 1024**2))
    problems = check_settings(data_env)
    assert len(problems) == 1
    assert problems[0].startswith(
        f"TRADING_DATA_DIR='{data_env['TRADING_DATA_DIR']}' is on a full disk: 5 MB free at "
        f"{tmp_path}, at least {MIN_FREE_BYTES // 1024**2} MB needed"
    )
    assert "use e.g. TRADING_DATA_DIR=" in problems[0]


def test_a_data_folder_that_is_a_file_is_named(tmp_path: Path, data_env: dict[str, str]) -> None:
    (tmp_path / "file").write_text("")
    (line,) = check_settings({**data_env, "TRADING_DATA_DIR": str(tmp_path / "file")})
    assert line.startswith(f"TRADING_DATA_DIR='{tmp_path / 'file'}' is a file, not a folder")


def test_the_start_date_the_code_loaded_with_is_reported(
    data_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADING_START_DATE", "1600-01-01")
    stand_in, error = partitions._load_trading_day()
    assert stand_in.start.date().isoformat() == partitions.DEFAULT_START_DATE
    assert error is not None and "TRADING_START_DATE=1600-01-01 is before" in str(error)
    monkeypatch.setattr(partitions, "_START_DATE_ERROR", error)
    with pytest.raises(SettingError, match="TRADING_START_DATE=1600-01-01"):
        partitions.first_partition_day()
    assert check_settings(data_env) == [str(error)]


def test_strings_from_the_process_environment_stay_bound_as_env_vars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("DATABASE_URL", "MINIO_ENDPOINT", "STOCK_SYMBOLS", "WATCHLIST_FILE",
                 "MARKET_DATA_SOURCE", "TRADING_START_DATE", "WORKFLOW_SCHEDULE", "SPOOL_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRADING_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("TRADING_MODE", "ibkr-paper")
    monkeypatch.setenv("IBKR_PORT", "4002")
    monkeypatch.setenv("LLM_PROVIDER", "offline")
    monkeypatch.setenv("ORDER_SIZING", "FIXED")
    resources = resources_from_environment()
    assert isinstance(resources["broker"].mode, dg.EnvVar)
    assert isinstance(resources["llm"].provider, dg.EnvVar)
    assert resources["broker"].ibkr.port == 4002
    assert resources["policy"].sizing == "fixed"  # a Literal: given as its value


def test_an_explicit_mapping_is_taken_as_is(data_env: dict[str, str]) -> None:
    resources = resources_from_environment({**data_env, "TRADING_MODE": "IBKR-Paper",
                                            "IBKR_PORT": "4002", "EVAL_EXIT_AFTER_SESSIONS": "7"})
    assert resources["broker"].mode == "IBKR-Paper"
    assert resources["broker"].trading_mode() == "ibkr-paper"
    assert resources["evaluation"].exit_after_sessions == 7
    assert isinstance(resources["broker"].ibkr.port, int)


def test_the_artifact_browser_url_defaults_to_make_web_and_can_be_set(
    data_env: dict[str, str],
) -> None:
    default = resources_from_environment(data_env)["io_manager"]
    assert default.artifact_browser_url == "http://127.0.0.1:8000"
    env = {**data_env, "ARTIFACT_BROWSER_URL": "https://artifacts.example.com"}
    assert check_settings(env) == []
    io_manager = resources_from_environment(env)["io_manager"]
    assert io_manager.artifact_browser_url == "https://artifacts.example.com"
