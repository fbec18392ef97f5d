"""The deployment as processes: the code location's gRPC server, `dagster-webserver` and
`dagster-daemon` on the PostgreSQL instance of docker/dagster.yaml; a run launched through the
webserver's GraphQL API is queued, started by the daemon, and leaves its artifacts in PostgreSQL
and S3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from resources.s3_object_store import S3ObjectStore
from tests.conftest import TRADING_DAY
from tests.servers import free_port, stop_process_group
from trading_assets.environment import resources_from_environment
from trading_assets.partitions import partition_key_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LOCATION = "trading_signals"
START_TIMEOUT_S = 180.0
RUN_TIMEOUT_S = 300.0

LAUNCH_RUN = """
mutation Launch($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message stack }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
    ... on RunConflict { message }
    ... on PipelineNotFoundError { message }
  }
}
"""
RUN_STATUS = """
query Run($runId: ID!) {
  runOrError(runId: $runId) { __typename ... on Run { status } ... on PythonError { message } }
}
"""


class Services:
    """Started processes and their log files; stopped by process group at the end."""

    def __init__(self, logs: Path, env: dict[str, str]) -> None:
        self.logs, self.env = logs, env
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, command: list[str]) -> None:
        with open(self.logs / f"{name}.log", "wb") as log:
            # Popen, in a session of its own: daemon and webserver handle SIGTERM there (from a
            # shell's `&` they would ignore it), and the group takes their children along.
            self.processes[name] = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def tails(self, lines: int = 40) -> str:
        parts = []
        for name in self.processes:
            text = (self.logs / f"{name}.log").read_text(errors="replace").splitlines()
            parts.append(f"--- {name} (last {lines} lines) ---\n" + "\n".join(text[-lines:]))
        return "\n".join(parts)

    def wait_for(self, what: str, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    pytest.fail(f"{name} exited ({process.returncode})\n{self.tails()}")
            if ready():
                return
            time.sleep(0.5)
        pytest.fail(f"{what} not ready within {timeout:.0f} s\n{self.tails()}")

    def stop(self) -> None:
        for process in reversed(self.processes.values()):
            stop_process_group(process)


def _grpc_healthy(port: int) -> bool:
    from dagster._grpc.client import DagsterGrpcClient

    try:
        return DagsterGrpcClient(port=port, host="127.0.0.1").health_check_query() == "SERVING"
    except Exception:  # not listening yet
        return False


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _graphql(base: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{base}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    assert "errors" not in body, body["errors"]
    return body["data"]


@pytest.fixture
def services(
    tmp_path: Path,
    dagster_home: Path,
    production_env: dict[str, str],
    production_instance: dg.DagsterInstance,
) -> Iterator[tuple[Services, str]]:
    grpc_port, web_port = free_port(), free_port()
    workspace = tmp_path / "workspace.yaml"
    # docker/workspace.yaml with the code service's host replaced by this machine.
    entry = yaml.safe_load((ROOT / "docker" / "workspace.yaml").read_text())["load_from"][0]
    entry["grpc_server"].update(host="127.0.0.1", port=grpc_port)
    workspace.write_text(yaml.safe_dump({"load_from": [entry]}))
    env = {**os.environ, **production_env, "STOCK_SYMBOLS": "TSLA", "PYTHONUNBUFFERED": "1"}
    procs = Services(tmp_path, env)
    try:
        procs.start("code", [
            str(BIN / "dagster"), "code-server", "start", "-h", "127.0.0.1", "-p", str(grpc_port),
            "-m", "trading_assets.definitions", "--location-name", LOCATION,
        ])
        procs.wait_for("the code server", lambda: _grpc_healthy(grpc_port), START_TIMEOUT_S)
        procs.start("webserver", [
            str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(web_port),
            "-w", str(workspace),
        ])
        procs.start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)])
        base = f"http://127.0.0.1:{web_port}"
        procs.wait_for("the webserver", lambda: _http_ok(f"{base}/server_info"), START_TIMEOUT_S)
        yield procs, base
    finally:
        procs.stop()
    for name, process in procs.processes.items():
        assert process.returncode is not None, f"{name} is still running"


def test_a_run_launched_through_the_webserver_is_queued_run_and_stored(
    services: tuple[Services, str],
    production_env: dict[str, str],
    production_instance: dg.DagsterInstance,
    bucket: str,
) -> None:
    procs, base = services
    production_instance.add_dynamic_partitions("symbol", ["TSLA"])
    production_instance.event_log_storage.set_concurrency_slots("broker", 1)
    production_instance.event_log_storage.set_concurrency_slots("llm", 2)
    partition = partition_key_for("TSLA", TRADING_DAY)
    tags = {
        "dagster/partition": partition,
        "dagster/partition/date": TRADING_DAY.isoformat(),
        "dagster/partition/symbol": "TSLA",
    }
    params = {
        "selector": {
            "repositoryLocationName": LOCATION,
            "repositoryName": "__repository__",
            "jobName": "trading_signals_job",
        },
        "runConfigData": {},
        "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
    }
    launched = _graphql(base, LAUNCH_RUN, {"executionParams": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", f"{launched}\n{procs.tails()}"
    run_id = launched["run"]["runId"]
    # The queued coordinator: the webserver only queues; the daemon starts the run.
    assert launched["run"]["status"] == "QUEUED"

    statuses: list[str] = []

    def finished() -> bool:
        status = _graphql(base, RUN_STATUS, {"runId": run_id})["runOrError"]["status"]
        if not statuses or statuses[-1] != status:
            statuses.append(status)
        return status in ("SUCCESS", "FAILURE", "CANCELED")

    procs.wait_for(f"run {run_id}", finished, RUN_TIMEOUT_S)
    assert statuses[-1] == "SUCCESS", f"run {run_id}: {statuses}\n{procs.tails()}"

    run = production_instance.get_run_by_id(run_id)
    assert run is not None and run.tags["dagster/partition"] == partition
    resources = resources_from_environment(production_env)
    rows = resources["artifact_db"].query(execution_id=run_id)
    assert len(rows) == 7 and {r.workflow_id for r in rows} == {"trading_signals_job"}
    store = resources["object_store"]
    assert isinstance(store, S3ObjectStore) and store.bucket == bucket
    for row in rows:
        assert row.object_uri.startswith(f"s3://{bucket}/")
        assert len(store.get(row.object_uri)) == row.size_bytes
