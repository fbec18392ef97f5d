"""MLflow fixtures: local stores copied from one template, and a real `mlflow server`.

Creating an MLflow SQLite store runs its ~140 schema migrations (5-15 s on a busy machine), so
the session creates one empty store and every test starts from a copy of it. The template and
the server are made once per session even when other test folders import these fixtures (each
import is a fixture of its own to pytest, so they share through ``_SHARED``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.servers import free_port

SERVER_START_TIMEOUT_S = 120.0
_SHARED: dict[str, Path | str] = {}


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, fully migrated MLflow SQLite store to copy."""
    if "template" not in _SHARED:
        from mlflow import MlflowClient

        path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
        MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
        _SHARED["template"] = path
    return Path(_SHARED["template"])


@pytest.fixture
def tracking_env(data_env: dict[str, str], mlflow_template: Path) -> dict[str, str]:
    """The embedded defaults (no MLFLOW_TRACKING_URI): the store is data/mlflow.db, pre-made."""
    env = {k: v for k, v in data_env.items() if k != "MLFLOW_TRACKING_URI"}
    data = Path(env["TRADING_DATA_DIR"])
    data.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(mlflow_template, data / "mlflow.db")
    return env


@pytest.fixture(scope="session")
def mlflow_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path
) -> str:
    """A real `mlflow server` on a free port (SQLite backend, proxied artifacts in tmp), one for
    the session: tests add experiments and runs of their own, never expect an empty server."""
    if "server" not in _SHARED:
        manager = running_mlflow_server(tmp_path_factory.mktemp("mlflow-server"), mlflow_template)
        _SHARED["server"] = manager.__enter__()

        def _stop() -> None:
            _SHARED.pop("server", None)
            manager.__exit__(None, None, None)

        request.config.add_cleanup(_stop)
    return str(_SHARED["server"])


@contextmanager
def running_mlflow_server(folder: Path, mlflow_template: Path) -> Iterator[str]:
    """`mlflow server` on a free port of 127.0.0.1 with its store in ``folder``, stopped after."""
    shutil.copyfile(mlflow_template, folder / "mlflow.db")
    port = free_port()
    log = (folder / "server.log").open("wb")
    # Job execution off: otherwise the server starts background workers taking ~2 GB.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("mlflow")), "server",
            "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
            "--artifacts-destination", str(folder / "artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ],
        cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
        # Its own process group: the server's worker goes down with it.
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (folder / "server.log").read_text(errors="replace")[-3000:]
                pytest.fail(f"mlflow server did not come up on {url}:\n{tail}")
            time.sleep(0.5)
        yield url
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
        log.close()
