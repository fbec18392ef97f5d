"""First runs started together in a fresh folder: every store is created once, every run works."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sql.locks import StoreInitialisationBusyError, initialisation_lock
from tests.conftest import TRADING_DAY
from trading_assets.cli import _is_concurrent_creation

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.integration
def test_four_first_runs_at_once_in_a_fresh_folder_all_succeed(tmp_path: Path) -> None:
    env = {
        k: v for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "STOCK_SYMBOLS", "LLM_PROVIDER", "MARKET_DATA_SOURCE",
                     "TRADING_MODE", "MLFLOW_TRACKING_URI", "MINIO_ENDPOINT", "SPOOL_DIR")
    }
    # Nothing exists yet: the artifacts database, the MLflow store and the Dagster home are all
    # created by whichever run gets there first.
    env.update(TRADING_DATA_DIR=str(tmp_path / "data"), DAGSTER_HOME=str(tmp_path / "home"))
    procs = {
        symbol: subprocess.Popen(
            [sys.executable, "-m", "trading_assets.cli", "run", "--symbols", symbol,
             "--date", str(TRADING_DAY)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        for symbol in ("AAPL", "MSFT", "TSLA", "NVDA")
    }
    outputs = {symbol: proc.communicate(timeout=600)[0].decode() for symbol, proc in procs.items()}
    failed = {s: out[-2500:] for s, out in outputs.items() if procs[s].returncode != 0}
    assert failed == {}
    for symbol, out in outputs.items():
        assert f"== {symbol} {TRADING_DAY}" in out and " ok" in out, out[-2500:]
        assert "mlflow_run failed" not in out


def test_the_lock_lets_one_process_in_and_says_who_holds_it_too_long(tmp_path: Path) -> None:
    target = tmp_path / "store.db"
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with initialisation_lock(target):
            held.set()
            release.wait(5)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    started = time.monotonic()
    with (
        pytest.raises(StoreInitialisationBusyError, match="store.db for more than 0.2 s"),
        initialisation_lock(target, timeout_seconds=0.2),
    ):
        pass
    assert time.monotonic() - started < 5  # the 0.2 s timeout, room for a loaded machine
    release.set()
    thread.join()
    with initialisation_lock(target, timeout_seconds=1):
        pass


@pytest.mark.parametrize(
    ("text", "race"),
    [
        ("table alembic_version already exists", True),
        ("table _alembic_tmp_experiments already exists", True),
        ("UNIQUE constraint failed: alembic_version.version_num", True),
        ('connection to server at "127.0.0.1", port 1 failed: Connection refused', False),
        ("database is locked", False),
    ],
)
def test_a_concurrent_creation_is_told_apart_from_an_outage(text: str, race: bool) -> None:
    assert _is_concurrent_creation(text) is race
