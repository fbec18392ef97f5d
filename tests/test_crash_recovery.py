"""A run killed inside the order step must not stop trading, on SQLite and PostgreSQL instances.

`trading-signals run` is started as a user starts it, in a subprocess, and made to stop right
after the order step sent its order (a sitecustomize in the test's folder wraps ``place_once``;
the product has no test hook). While it holds the one `broker` slot, a second run gives up after
POOL_WAIT_SECONDS naming it; once it is SIGKILLed, the next run reaps it and trades.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from tests.production.conftest import dagster_postgres_env
from tests.servers import throwaway_postgres_database
from trading_assets import run_recovery
from trading_assets.cli import main

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
DAY = "2025-06-02"
START_TIMEOUT_S = 90.0

_HOOK = '''
import os, time
from pathlib import Path

if os.environ.get("TEST_BLOCK_AFTER_ORDER"):
    from trading_assets.execution import placement

    _place_once = placement.place_once

    def place_once(*args, **kwargs):
        decision = _place_once(*args, **kwargs)
        Path(os.environ["TEST_BLOCK_AFTER_ORDER"]).write_text(str(os.getpid()))
        while True:  # the order is at the simulator; its artifact is never stored
            time.sleep(1)

    placement.place_once = place_once
'''


@pytest.fixture(params=["sqlite", "postgres"])
def stage(
    request: pytest.FixtureRequest, tmp_path: Path, shared_mlflow_uri: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict[str, str]]:
    """The environment of `trading-signals run`, its Dagster home on the backend's instance."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {
        "TRADING_DATA_DIR": str(tmp_path / "data"),
        "DAGSTER_HOME": str(home),
        "MLFLOW_TRACKING_URI": shared_mlflow_uri,
    }
    with throwaway_postgres_database("dagster_crash") if request.param == "postgres" else (
        _no_database()
    ) as url:
        if url:
            shutil.copyfile(REPO / "docker" / "dagster.yaml", home / "dagster.yaml")
            env.update(dagster_postgres_env(url))
        else:
            shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
        for name in ("DATABASE_URL", "STOCK_SYMBOLS", "LLM_PROVIDER", "MARKET_DATA_SOURCE",
                     "TRADING_MODE", "POOL_WAIT_SECONDS"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield env


class _no_database:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _run(env: dict[str, str], symbols: str, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "trading_assets.cli", "run", "--date", DAY, "--symbols", symbols],
        cwd=REPO, env={**os.environ, **env, **extra}, text=True, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def _wait_for(what: str, condition, process: subprocess.Popen[str], timeout: float):  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process.poll() is not None:
            pytest.fail(f"the run exited ({process.returncode}) before {what}:\n"
                        f"{process.stdout.read() if process.stdout else ''}")
        time.sleep(0.2)
    process.kill()
    pytest.fail(f"no {what} within {timeout:.0f} s")


def _order_holder(instance: dg.DagsterInstance) -> str | None:
    info = instance.event_log_storage.get_concurrency_info("broker")
    return next((s.run_id for s in info.claimed_slots if s.step_key == "order"), None)


def _signal_once_waiting(
    instance: dg.DagsterInstance, holder: str, signum: int
) -> threading.Thread:
    """Signals this process once a run other than ``holder`` waits for the broker slot (only
    then: before its run starts, a SIGTERM would end pytest)."""

    def send() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pending = instance.event_log_storage.get_concurrency_info("broker").pending_steps
            if any(p.run_id != holder and p.assigned_timestamp is None for p in pending):
                os.kill(os.getpid(), signum)
                return
            time.sleep(0.2)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def test_a_run_killed_in_the_order_step_never_blocks_the_next(
    stage: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_HOOK)
    marker = tmp_path / "order-sent"
    killed = _run(stage, "TSLA", PYTHONPATH=f"{hook}{os.pathsep}{REPO}",
                  TEST_BLOCK_AFTER_ORDER=str(marker))
    try:
        _wait_for("the order was sent", marker.exists, killed, START_TIMEOUT_S)
        _recover(stage, tmp_path, killed, capsys, monkeypatch)
    finally:
        if killed.poll() is None:
            os.killpg(killed.pid, signal.SIGKILL)
        killed.communicate()


def _recover(
    stage: dict[str, str], tmp_path: Path, killed: subprocess.Popen[str],
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    with dg.DagsterInstance.from_config(stage["DAGSTER_HOME"]) as instance:
        holder = _wait_for("the broker slot claimed by order", lambda: _order_holder(instance),
                           killed, 10.0)

        # Alive and holding the slot: a second run waits the bound, names the holder, gives up.
        # (In this process, as C below: a second interpreter's start-up is seconds of the test.)
        monkeypatch.setenv("POOL_WAIT_SECONDS", "2")
        capsys.readouterr()
        started = time.monotonic()
        assert main(["run", "--date", DAY, "--symbols", "NVDA"]) == 4
        assert time.monotonic() - started < 30
        waited = capsys.readouterr()
        error = waited.err.splitlines()
        assert len(error) == 1 and error[0].startswith("error: NVDA"), waited
        assert "gave up after 2 s waiting for a slot in pool broker" in error[0]
        assert f"run {holder} (trading_signals_job {DAY}|TSLA" in error[0]
        assert "process alive" in error[0] and f"kill {killed.pid}" in error[0]
        assert run_recovery.reap(instance).reaped == []  # never a live run

        # SIGTERM while waiting (Dagster defers it there) stops the run at once.
        monkeypatch.setenv("POOL_WAIT_SECONDS", "60")
        sender = _signal_once_waiting(instance, holder, signal.SIGTERM)
        started = time.monotonic()
        assert main(["run", "--date", DAY, "--symbols", "NVDA"]) == 130
        assert time.monotonic() - started < 30
        sender.join()
        assert "interrupted (SIGINT/SIGTERM)" in capsys.readouterr().err
        assert instance.get_run_by_id(holder).status == dg.DagsterRunStatus.STARTED

        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait()

        capsys.readouterr()
        assert main(["runs", "--stuck"]) == 1
        listing = capsys.readouterr().out
        assert f"{holder}  STARTED" in listing and f"pid {killed.pid}" in listing
        assert "dead  slots held: broker (order)" in listing

        # Same partition and another: the dead run is reaped first, both complete.
        # Bounded: were the dead run not reaped, this would give up (exit 4) after 30 s.
        monkeypatch.setenv("POOL_WAIT_SECONDS", "30")
        assert main(["run", "--date", DAY, "--symbols", "TSLA,NVDA"]) == 0
        out = capsys.readouterr().out
        assert f"reaped run {holder}" in out
        assert f"== TSLA {DAY}" in out and f"== NVDA {DAY}" in out and "FAILED" not in out
        assert instance.get_run_by_id(holder).status == dg.DagsterRunStatus.FAILURE
        assert instance.event_log_storage.get_concurrency_info("broker").claimed_slots == []

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'data' / 'paper_broker.db'}")
    with engine.connect() as connection:
        per_day = connection.execute(sa.text(
            "SELECT symbol, trade_date, count(*) FROM paper_orders GROUP BY symbol, trade_date"
        )).all()
    engine.dispose()
    assert ("TSLA", DAY, 1) in per_day  # sent by the killed run, reused by the next
    assert all(count == 1 for _, _, count in per_day)


def test_process_state_tells_dead_reused_and_live_pids() -> None:
    me = run_recovery.process_tags()
    assert run_recovery.process_state(me) == "alive"
    assert run_recovery.process_state({**me, run_recovery.PROCESS_START_TAG: "other:1"}) == (
        "pid reused"
    )
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert run_recovery.process_state({**me, run_recovery.PID_TAG: str(child.pid)}) == "dead"
    assert run_recovery.process_state({**me, run_recovery.HOST_TAG: "elsewhere"}) == "other host"
    assert run_recovery.process_state({}) == "untracked"


def test_the_stuck_run_sensor_reaps_a_dead_cli_run_and_leaves_a_live_one(
    instance: dg.DagsterInstance,
) -> None:
    from dagster._core.test_utils import create_run_for_test

    from trading_assets.sensors import stuck_run_sensor

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    me = run_recovery.process_tags()
    dead = create_run_for_test(
        instance, job_name="trading_signals_job", status=dg.DagsterRunStatus.STARTED,
        tags={**me, run_recovery.PID_TAG: str(child.pid)},
    )
    live = create_run_for_test(
        instance, job_name="trading_signals_job", status=dg.DagsterRunStatus.STARTED, tags=me,
    )
    assert stuck_run_sensor.default_status == dg.DefaultSensorStatus.RUNNING
    with dg.build_sensor_context(instance=instance) as context:
        result = stuck_run_sensor(context)
    assert "reaped 1 dead run" in str(result.skip_message)
    assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(live.run_id).status == dg.DagsterRunStatus.STARTED
    with dg.build_sensor_context(instance=instance) as context:
        assert "no dead run" in str(stuck_run_sensor(context).skip_message)
