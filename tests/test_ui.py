"""`make ui`'s webserver shows the seven assets, their lineage and what `run` materialized."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.servers import free_port, stop_process_group
from trading_assets.cli import main

REPO = Path(__file__).resolve().parents[1]
QUERY = """{ assetNodes { assetKey { path } dependencyKeys { path }
  partitionStats { numMaterialized } } }"""


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def _wait_until_answering(port: int, proc: subprocess.Popen, seconds: float,
                          output: Callable[[], str]) -> None:
    """Until the webserver at ``port`` answers ``/server_info``; fails with ``output()`` if its
    process exits first or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
            return
        except OSError:
            assert proc.poll() is None, output()
            time.sleep(0.5)
    pytest.fail(f"dagster-webserver did not answer within {seconds:g} s\n{output()}")


@pytest.fixture
def webserver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setenv("TRADING_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    assert main(["run", "--date", "2025-06-02", "--symbols", "TSLA"]) == 0
    port = free_port()
    # Its own session: the webserver's children go down with it.
    proc = subprocess.Popen(
        [sys.executable, "-m", "dagster_webserver", "-w", "workspace.yaml",
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env=dict(os.environ), start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        _wait_until_answering(port, proc, 90, lambda: proc.stderr.read().decode()[-2000:])
        yield port
    finally:
        stop_process_group(proc, timeout=15)


@pytest.mark.integration
def test_ui_shows_the_graph_and_the_partitions_run_materialized(webserver: int) -> None:
    nodes = _graphql(webserver, QUERY)["data"]["assetNodes"]
    by_key = {n["assetKey"]["path"][0]: n for n in nodes}
    assert {"market_data", "daily_chart", "weekly_chart", "llm_analysis", "trading_signal",
            "order", "portfolio"} <= set(by_key)
    assert {d["path"][0] for d in by_key["llm_analysis"]["dependencyKeys"]} == {
        "market_data", "daily_chart", "weekly_chart"}
    for name in ("market_data", "daily_chart", "portfolio"):
        assert by_key[name]["partitionStats"]["numMaterialized"] == 1


def _lines_until(proc: subprocess.Popen[str], marker: str, seconds: float) -> list[str]:
    """The process's output lines up to the first that contains ``marker`` (or the deadline)."""
    lines: list[str] = []
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")),
                              daemon=True)
    reader.start()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not any(marker in line for line in lines):
        assert proc.poll() is None, "".join(lines)[-3000:]
        time.sleep(0.2)
    return list(lines)


@pytest.mark.integration
def test_make_ui_starts_without_a_warning_and_names_the_artifact_browser(tmp_path: Path) -> None:
    home, data, port = tmp_path / "home", tmp_path / "data", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADING_", "PYTHONWARN"))}
    env |= {"DAGSTER_HOME": str(home), "TRADING_DATA_DIR": str(data)}
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "ui", f"UI_PORT={port}"], cwd=REPO, env=env,
        start_new_session=True, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        lines = _lines_until(proc, "Serving dagster-webserver", 120)
        assert any("Serving dagster-webserver" in line for line in lines), "".join(lines)[-3000:]
        # The webserver logs "Serving" before uvicorn binds its socket: ask until it answers.
        _wait_until_answering(port, proc, 60, lambda: "".join(lines)[-3000:])
        nodes = _graphql(port, "{ assetNodes { assetKey { path } } }")["data"]["assetNodes"]
    finally:
        stop_process_group(proc, timeout=15)
    out = "".join(lines)
    assert f"Dagster UI: http://127.0.0.1:{port}" in out
    assert "artifact browser: http://127.0.0.1:8000 (make web)" in out
    # Neither the foreign dagster.yaml notice nor Dagster's "use dg dev" one.
    assert "WARNING" not in out and "Warning" not in out, out
    assert "order" in {n["assetKey"]["path"][0] for n in nodes}  # the code location loaded
    assert (home / "dagster.yaml").exists() and not (home / "data").exists()
