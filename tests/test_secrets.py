"""No password in clear anywhere: `config`, failing and succeeding runs, grepped byte by byte.

Each case runs `trading-signals` as a user would (a subprocess, a fresh data folder and Dagster
home) with a database URL that carries secrets in the password and in the query string, then
searches every file both commands left behind, and their output, for the secret.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TRADING_DAY

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "trading_assets.cli"]

# Percent-encoded `@` in the password, a second password in the query (libpq reads both).
UNREACHABLE = "postgresql+psycopg2://u:S3cr%40t-XYZ@127.0.0.1:1/db?password=S3cretQ"
UNREACHABLE_SECRETS = ("S3cr%40t-XYZ", "S3cr@t-XYZ", "S3cretQ")
FAKE_SQLITE_SECRET = "FakeQ-8fJ2%21x"
FAKE_SQLITE_SECRETS = (FAKE_SQLITE_SECRET, "FakeQ-8fJ2!x")


def _env(tmp_path: Path, database_url: str, mlflow_uri: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "STOCK_SYMBOLS", "LLM_PROVIDER", "MARKET_DATA_SOURCE",
                     "TRADING_MODE", "MINIO_ENDPOINT", "ALERT_WEBHOOK_URL", "SPOOL_DIR")
    }
    env.update(
        TRADING_DATA_DIR=str(tmp_path / "data"),
        DAGSTER_HOME=str(tmp_path / "home"),
        DATABASE_URL=database_url,
        # Made once per session outside the data folder: a new store takes 5-15 s to migrate.
        MLFLOW_TRACKING_URI=mlflow_uri,
        # The unreachable database fails at once; one attempt keeps the failing run short.
        STORAGE_WRITE_ATTEMPTS="1",
        STORAGE_RETRY_BASE_SECONDS="0.05",
    )
    return env


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*CLI, *args], cwd=REPO, env=env, capture_output=True, timeout=300, check=False
    )


def _leaks(secrets: tuple[str, ...], folders: list[Path], outputs: list[bytes]) -> list[str]:
    found = []
    for secret in (s.encode() for s in secrets):
        found += [f"output #{i}" for i, out in enumerate(outputs) if secret in out]
        for folder in folders:
            for path in folder.rglob("*"):
                if path.is_file() and secret in path.read_bytes():
                    found.append(f"{secret.decode()} in {path}")
    return found


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    MlflowClient(tracking_uri=uri).search_experiments()
    return uri


@pytest.mark.integration
def test_an_unreachable_database_with_passwords_leaks_them_nowhere(
    tmp_path: Path, mlflow_uri: str
) -> None:
    env = _env(tmp_path, UNREACHABLE, mlflow_uri)
    config = _cli(env, "config")
    run = _cli(env, "run", "--symbols", "TSLA", "--date", str(TRADING_DAY))
    assert config.returncode == 0, config.stderr.decode()[-2000:]
    assert b"u:***@127.0.0.1:1/db?password=***" in config.stdout
    # The command line's pre-flight refuses to start, naming the database (masked).
    assert run.returncode == 3, run.stderr.decode()[-2000:]
    assert b"database: cannot reach postgresql+psycopg2://u:***@127.0.0.1:1/db" in run.stderr
    # A run the daemon launches has no such pre-flight for the stores: its artifacts are
    # spooled, with their rows and target, and must not carry the password either.
    daemon_run = _graph_in_process(env)
    assert not daemon_run.success
    outputs = [config.stdout, config.stderr, run.stdout, run.stderr]
    folders = [tmp_path / "data", tmp_path / "home"]
    assert any((tmp_path / "data" / "spool").rglob("entry.json")), "nothing was spooled"
    assert _leaks(UNREACHABLE_SECRETS, folders, outputs) == []


def _graph_in_process(env: dict[str, str]) -> object:
    import dagster as dg

    from trading_assets.definitions import build_definitions
    from trading_assets.environment import resources_from_environment
    from trading_assets.partitions import partition_key_for

    job = build_definitions(resources_from_environment(env)).resolve_job_def(
        "trading_signals_job")
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("symbol", ["TSLA"])
        return job.execute_in_process(
            partition_key=partition_key_for("TSLA", TRADING_DAY), instance=instance,
            raise_on_error=False,
        )


@pytest.mark.integration
def test_a_working_sqlite_url_with_a_query_password_leaks_it_nowhere(
    tmp_path: Path, mlflow_uri: str
) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'artifacts.db'}?password={FAKE_SQLITE_SECRET}"
    env = _env(tmp_path, url, mlflow_uri)
    config = _cli(env, "config")
    run = _cli(env, "run", "--symbols", "TSLA", "--date", str(TRADING_DAY))
    assert config.returncode == 0, config.stderr.decode()[-2000:]
    assert run.returncode == 0, (run.stdout + run.stderr).decode()[-3000:]
    assert b"artifacts.db?password=***" in run.stdout
    outputs = [config.stdout, config.stderr, run.stdout, run.stderr]
    folders = [tmp_path / "data", tmp_path / "home"]
    assert _leaks(FAKE_SQLITE_SECRETS, folders, outputs) == []
