"""`trading-signals doctor`: one line per service, exit 0 only when all is well."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from tests.servers import free_port
from tests.test_cli import cli_env  # noqa: F401  (the fixture)
from trading_assets import run_recovery
from trading_assets.cli import main
from trading_assets.doctor import SERVICES


def test_doctor_says_all_is_well_then_names_a_dead_run_and_the_kill_switch(
    cli_env: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    from dagster._core.test_utils import create_run_for_test

    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    for service in SERVICES:
        assert any(line.startswith("OK") and f" {service} " in line for line in out.splitlines())
    assert out.rstrip().endswith("all well")

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    with dg.DagsterInstance.get() as instance:
        dead = create_run_for_test(
            instance, job_name="trading_signals_job", status=dg.DagsterRunStatus.STARTED,
            tags={**run_recovery.process_tags(), run_recovery.PID_TAG: str(child.pid)},
        )
    (cli_env / "data" / "KILL_SWITCH").touch()
    assert main(["doctor"]) == 1
    lines = capsys.readouterr().out.splitlines()
    runs = next(line for line in lines if " runs " in line)
    assert runs.startswith("PROBLEM") and dead.run_id in runs and "runs --reap" in runs
    switch = next(line for line in lines if " kill switch " in line)
    assert switch.startswith("PROBLEM") and "KILL_SWITCH" in switch
    assert lines[-1] == "2 problem(s)"


def test_doctor_names_an_unreachable_database_in_seconds_without_its_password(
    cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg2://u:Doctor-S3cret@127.0.0.1:1/db")
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    database = next(line for line in out.splitlines() if " database " in line)
    assert database.startswith("PROBLEM") and "127.0.0.1" in database
    assert "Doctor-S3cret" not in out


def test_doctor_names_a_down_gateway_llm_and_mlflow_in_seconds_without_secrets(
    cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    gateway, llm, mlflow = free_port(), free_port(), free_port()
    settings = {
        "TRADING_MODE": "ibkr-paper", "IBKR_PORT": str(gateway), "MARKET_DATA_SOURCE": "ibkr",
        "LLM_PROVIDER": "openai", "LLM_API_BASE_URL": f"http://127.0.0.1:{llm}/v1",
        "OPENAI_API_KEY": "sk-doctor-never-printed-77",
        "MLFLOW_TRACKING_URI": f"http://me:Mlflow-Pw-99@127.0.0.1:{mlflow}",
        "IBKR_ACCOUNT": "U9876543",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    started = time.monotonic()
    assert main(["doctor"]) == 1
    # The checks share a 5 s deadline; the rest is room for a loaded machine (7.5 s was seen in
    # a fresh-clone CI). A guard against hanging on each service in turn, not a speed target.
    assert time.monotonic() - started < 15
    out = capsys.readouterr().out
    lines = {line.split()[1]: line for line in out.splitlines()[:-1]}
    assert lines["gateway"].startswith("PROBLEM") and f"127.0.0.1:{gateway}" in lines["gateway"]
    assert lines["llm"].startswith("PROBLEM") and f"127.0.0.1:{llm}/v1" in lines["llm"]
    assert lines["mlflow"].startswith("PROBLEM") and f"127.0.0.1:{mlflow}" in lines["mlflow"]
    assert out.splitlines()[-1] == "3 problem(s)"
    for secret in ("sk-doctor-never-printed-77", "Mlflow-Pw-99", "U9876543"):
        assert secret not in out
