"""A native Dagster backfill, the way a user launches one: `dagster dev` (webserver and daemon) on
the repository's workspace.yaml and dagster.yaml (or a caller's), the backfill launched through
the webserver's GraphQL API and run by the daemon; what it ran and what the UI says of its
progress come back.

Not a test module: the tests (tests/test_native_backfill.py) and `make bench` (bench/native.py)
share this one harness. The standard library talks to the server, every request with a timeout.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sql.dagster_event_log import pin_base_dir
from tests.servers import free_port, stop_process_group
from trading_assets.tags import RANGE_END_TAG, RANGE_START_TAG

REPO = Path(__file__).resolve().parents[1]
JOB = "trading_signals_job"  # its assets are the trading graph's: everything but the evaluation
SYMBOL_DIMENSION = "symbol"
FINAL_STATUSES = ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED")
# What `dagster dev` needs before a backfill can be measured: the backfill daemon picks up new
# backfills, the run queue launches their runs.
DAEMONS = ("BACKFILL", "QUEUED_RUN_COORDINATOR")

REQUEST_TIMEOUT_S = 30.0  # one GraphQL request; the progress query of a big backfill is slow
START_TIMEOUT_S = 180.0  # webserver, code location and daemon heartbeats on a busy 2-core machine
STOP_TIMEOUT_S = 20.0
POLL_S = 1.0
LOG_TAIL_CHARS = 4000

# -- GraphQL ----------------------------------------------------------------------------------

WORKSPACE = """
{ workspaceOrError { __typename
    ... on Workspace { locationEntries { name loadStatus
      locationOrLoadError { __typename
        ... on RepositoryLocation { name repositories { name } }
        ... on PythonError { message } } } }
    ... on PythonError { message } } }
"""

DAEMON_HEALTH = """
{ instance { daemonHealth { allDaemonStatuses { daemonType healthy required } } } }
"""

JOB_ASSETS = """
query JobAssets($pipeline: PipelineSelector!) {
  assetNodes(pipeline: $pipeline) { assetKey { path } }
}
"""

ADD_PARTITION = """
mutation AddPartition($repo: RepositorySelector!, $name: String!, $key: String!) {
  addDynamicPartition(repositorySelector: $repo, partitionsDefName: $name, partitionKey: $key) {
    __typename
    ... on AddDynamicPartitionSuccess { partitionKey }
    ... on DuplicateDynamicPartitionError { partitionName }
    ... on Error { message }
  }
}
"""

LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on Error { message }
  }
}
"""

STATUS = """
query Status($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status }
    ... on Error { message }
  }
}
"""

# Everything the backfill's page in the UI shows: its status, its runs and, per asset, how many
# of the targeted partitions it counts as materialized, in progress and failed.
DETAIL = """
query Detail($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      id status numPartitions timestamp endTimestamp isAssetBackfill
      error { message }
      assetBackfillData {
        assetBackfillStatuses {
          __typename
          ... on AssetPartitionsStatusCounts {
            assetKey { path }
            numPartitionsTargeted numPartitionsInProgress numPartitionsMaterialized
            numPartitionsFailed
          }
          ... on UnpartitionedAssetStatus { assetKey { path } inProgress materialized failed }
        }
      }
      runs(limit: 100000) { runId status startTime endTime tags { key value } }
    }
    ... on Error { message }
  }
}
"""


class ServerError(RuntimeError):
    """`dagster dev` did not start, did not answer, or refused a request; with its log's tail."""


@dataclass(frozen=True)
class BackfillRun:
    run_id: str
    status: str
    start: float | None  # epoch seconds
    end: float | None
    tags: dict[str, str]

    @property
    def partitions(self) -> list[str]:
        """The partition keys this run covers: its one key, or its range's ends."""
        if "dagster/partition" in self.tags:
            return [self.tags["dagster/partition"]]
        ends = (self.tags.get(RANGE_START_TAG), self.tags.get(RANGE_END_TAG))
        return [end for end in ends if end]


@dataclass(frozen=True)
class AssetProgress:
    """One asset's line on the backfill's page: partitions targeted, materialized, ..."""

    asset: str
    targeted: int
    materialized: int
    in_progress: int
    failed: int


@dataclass(frozen=True)
class BackfillOutcome:
    backfill_id: str
    status: str
    partitions: list[str]  # the partition keys launched
    assets: list[str]  # the asset keys launched (each a "/"-joined path)
    launched_at: float  # epoch seconds, just before the launch mutation
    seconds_to_last_run_end: float | None  # launch -> the last run's end
    seconds_to_status: float  # launch -> the final status (the backfill's own end time)
    runs: list[BackfillRun]
    progress: list[AssetProgress]  # as GraphQL reports it once the backfill has ended
    num_partitions: int | None  # the backfill's own count (the UI's "N partitions")
    error: str | None = None
    # (seconds after launch, status, runs ended, fewest partitions any asset counts materialized)
    # sampled while it ran: how far the UI's progress trails the runs.
    timeline: list[tuple[float, str, int, int]] = field(default_factory=list)

    @property
    def seconds_to_first_run_start(self) -> float | None:
        starts = [r.start for r in self.runs if r.start]
        return min(starts) - self.launched_at if starts else None


def partition_keys(symbols: Sequence[str], days: Sequence[dt.date]) -> list[str]:
    """The multi-partition keys of ``symbols`` x ``days`` (Dagster orders dimensions by name:
    ``date|symbol``), oldest day first within each symbol."""
    return [f"{day.isoformat()}|{symbol}" for symbol in symbols for day in days]


class _Recording(dict[str, str]):
    """An environment that remembers every variable looked up in it."""

    def __init__(self, values: Mapping[str, str]) -> None:
        super().__init__(values)
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.asked.add(key)
        return super().get(key, default)


def _settings_read(data: Path) -> set[str]:
    """The variables the code location reads (so that none leaks in from this process: a
    developer's DATABASE_URL or MINIO_ENDPOINT would otherwise receive the sandbox's artifacts)."""
    from trading_assets.environment import check_settings

    env = _Recording({"TRADING_DATA_DIR": str(data)})
    check_settings(env)
    return env.asked


def server_environment(
    sandbox: Mapping[str, str], settings: Mapping[str, str] | None = None,
    symbols: Sequence[str] = (), *, dagster_yaml: Path | None = None,
) -> dict[str, str]:
    """The server's environment: this process's without any setting the code location reads
    (nor DAGSTER_*), then the sandbox's DAGSTER_HOME and TRADING_DATA_DIR (created), then
    ``settings``, which win over all of it: the DAGSTER_* variables a ``dagster_yaml`` reads
    (e.g. docker/dagster.yaml's DAGSTER_POSTGRES_*) reach the server only this way.

    The home gets ``dagster_yaml`` (replacing any there), else keeps its own, else gets the
    repository's dagster.yaml. STOCK_SYMBOLS is the backfill's symbols unless ``settings`` says
    otherwise, so the watchlist sensor registers no others.
    """
    home, data = Path(sandbox["DAGSTER_HOME"]), Path(sandbox["TRADING_DATA_DIR"])
    home.mkdir(parents=True, exist_ok=True)
    data.mkdir(parents=True, exist_ok=True)
    if dagster_yaml is not None:
        shutil.copyfile(dagster_yaml, home / "dagster.yaml")
    elif not (home / "dagster.yaml").exists():
        shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    pin_base_dir(home / "dagster.yaml")  # the test opens it too, in its own process
    own = _settings_read(data)
    env = {k: v for k, v in os.environ.items()
           if k not in own and not k.startswith(("TRADING_", "DAGSTER_", "PYTHONWARN"))}
    env |= {"DAGSTER_HOME": str(home.resolve()), "TRADING_DATA_DIR": str(data.resolve())}
    if symbols:
        env["STOCK_SYMBOLS"] = ",".join(symbols)
    return env | dict(settings or {})


class DagsterDev:
    """A running `dagster dev`: its GraphQL endpoint, its code location, its log."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path,
                 env: Mapping[str, str]) -> None:
        self.process = process
        self.port = port
        self.log = log
        self.env = dict(env)
        self.url = f"http://127.0.0.1:{port}/graphql"
        self.location = ""
        self.repository = ""

    @property
    def home(self) -> Path:
        return Path(self.env["DAGSTER_HOME"])

    @property
    def data_dir(self) -> Path:
        return Path(self.env["TRADING_DATA_DIR"])

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError as exc:
            return f"(no log: {exc})"

    def fail(self, message: str) -> ServerError:
        return ServerError(f"{message}\n--- dagster dev log ({self.log}), last lines ---\n"
                           f"{self.log_tail()}")

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None,
                timeout: float = REQUEST_TIMEOUT_S) -> dict[str, Any]:
        """The ``data`` of one GraphQL request; ServerError on a GraphQL or HTTP error."""
        request = urllib.request.Request(
            self.url, data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:2000]
            raise self.fail(f"GraphQL answered HTTP {exc.code}: {detail}") from exc
        if body.get("errors"):
            raise self.fail(f"GraphQL errors: {json.dumps(body['errors'])[:2000]}")
        return body["data"]

    # -- start-up ------------------------------------------------------------------------------

    def wait_until_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        """Until GraphQL answers, the code location is loaded and the daemons beat."""
        deadline = time.monotonic() + timeout
        waiting_for = "the webserver to answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise self.fail(f"dagster dev exited with code {self.process.returncode} while "
                                f"waiting for {waiting_for}")
            try:
                if not self.location:
                    waiting_for = "the code location to load"
                    self._find_repository()
                if self.location:
                    waiting_for = f"the daemons {', '.join(DAEMONS)} to report healthy"
                    if self._daemons_healthy():
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass  # not listening yet
            time.sleep(0.5)
        raise self.fail(f"dagster dev on port {self.port}: no {waiting_for} within {timeout:.0f} s")

    def _find_repository(self) -> None:
        workspace = self.graphql(WORKSPACE, timeout=5)["workspaceOrError"]
        if workspace["__typename"] != "Workspace":
            raise self.fail(f"workspaceOrError: {workspace.get('message')}")
        for entry in workspace["locationEntries"]:
            loaded = entry["locationOrLoadError"]
            if loaded is None:  # still loading
                continue
            if loaded["__typename"] == "PythonError":
                raise self.fail(f"code location {entry['name']} failed to load: "
                                f"{loaded['message']}")
            if entry["loadStatus"] == "LOADED" and loaded["repositories"]:
                self.location = loaded["name"]
                self.repository = loaded["repositories"][0]["name"]

    def _daemons_healthy(self) -> bool:
        statuses = self.graphql(DAEMON_HEALTH, timeout=5)["instance"]["daemonHealth"]
        healthy = {s["daemonType"] for s in statuses["allDaemonStatuses"] if s["healthy"]}
        return set(DAEMONS) <= healthy

    # -- what a user does in the UI ------------------------------------------------------------

    @property
    def repository_selector(self) -> dict[str, str]:
        return {"repositoryLocationName": self.location, "repositoryName": self.repository}

    def job_assets(self, job: str = JOB) -> list[str]:
        """The asset keys of ``job`` as the server loaded it, each as a "/"-joined path."""
        selector = {**self.repository_selector, "pipelineName": job}
        nodes = self.graphql(JOB_ASSETS, {"pipeline": selector})["assetNodes"]
        if not nodes:
            raise self.fail(f"the job {job} has no assets in {self.location}")
        return ["/".join(n["assetKey"]["path"]) for n in nodes]

    def add_partitions(self, keys: Sequence[str], dimension: str = SYMBOL_DIMENSION) -> None:
        """Register ``keys`` in the dynamic partitions ``dimension`` (present ones are kept)."""
        for key in keys:
            variables = {"repo": self.repository_selector, "name": dimension, "key": key}
            result = self.graphql(ADD_PARTITION, variables)["addDynamicPartition"]
            if result["__typename"] not in ("AddDynamicPartitionSuccess",
                                            "DuplicateDynamicPartitionError"):
                raise self.fail(f"addDynamicPartition {dimension}={key}: {result}")

    def launch_backfill(self, assets: Sequence[str], partitions: Sequence[str],
                        title: str = "native backfill") -> str:
        """An asset backfill of ``assets`` over ``partitions``, as the UI's "Materialize" of
        selected partitions launches it (assetSelection + partitionNames); its id."""
        params = {
            "assetSelection": [{"path": a.split("/")} for a in assets],
            "partitionNames": list(partitions),
            "title": title,
        }
        result = self.graphql(LAUNCH, {"params": params})["launchPartitionBackfill"]
        if result["__typename"] != "LaunchBackfillSuccess":
            raise self.fail(f"launchPartitionBackfill: {result['__typename']}: "
                            f"{result.get('message')}\n{result.get('stack') or ''}")
        return result["backfillId"]

    def backfill_status(self, backfill_id: str) -> str:
        result = self.graphql(STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        if result["__typename"] != "PartitionBackfill":
            raise self.fail(f"backfill {backfill_id}: {result.get('message')}")
        return result["status"]

    def backfill_detail(self, backfill_id: str) -> dict[str, Any]:
        result = self.graphql(DETAIL, {"id": backfill_id})["partitionBackfillOrError"]
        if result["__typename"] != "PartitionBackfill":
            raise self.fail(f"backfill {backfill_id}: {result.get('message')}")
        return result

    def run_backfill(self, assets: Sequence[str], partitions: Sequence[str], *,
                     timeout: float, sample_every: float = 5.0) -> BackfillOutcome:
        """Launch the backfill and wait (until ``timeout`` seconds) for its final status."""
        launched_at = time.time()
        backfill_id = self.launch_backfill(assets, partitions)
        deadline = time.monotonic() + timeout
        timeline: list[tuple[float, str, int, int]] = []
        next_sample = 0.0
        status = "REQUESTED"
        while True:
            if self.process.poll() is not None:
                raise self.fail(f"dagster dev exited with code {self.process.returncode} during "
                                f"backfill {backfill_id}")
            if time.monotonic() >= next_sample:
                # The page's counts, now and then: the progress query is heavier than the status.
                detail = self.backfill_detail(backfill_id)
                status = detail["status"]
                timeline.append(_sample(detail, launched_at))
                next_sample = time.monotonic() + sample_every
            else:
                status = self.backfill_status(backfill_id)
            if status in FINAL_STATUSES:
                break
            if time.monotonic() >= deadline:
                raise self.fail(f"backfill {backfill_id} is still {status} after {timeout:.0f} s "
                                f"({_summary(self.backfill_detail(backfill_id))})")
            time.sleep(POLL_S)
        ended_seen = time.time()
        detail = self.backfill_detail(backfill_id)
        timeline.append(_sample(detail, launched_at))
        return _outcome(detail, assets, partitions, launched_at, ended_seen, timeline)


def _runs(detail: Mapping[str, Any]) -> list[BackfillRun]:
    runs = [
        BackfillRun(
            run_id=r["runId"], status=r["status"], start=r["startTime"], end=r["endTime"],
            tags={t["key"]: t["value"] for t in r["tags"]},
        )
        for r in detail["runs"]
    ]
    return sorted(runs, key=lambda r: (r.start or float("inf"), r.run_id))


def _progress(detail: Mapping[str, Any]) -> list[AssetProgress]:
    lines = []
    for s in (detail.get("assetBackfillData") or {}).get("assetBackfillStatuses") or []:
        asset = "/".join(s["assetKey"]["path"])
        if s["__typename"] == "AssetPartitionsStatusCounts":
            lines.append(AssetProgress(asset, s["numPartitionsTargeted"],
                                       s["numPartitionsMaterialized"],
                                       s["numPartitionsInProgress"], s["numPartitionsFailed"]))
        else:
            lines.append(AssetProgress(asset, 1, int(s["materialized"]), int(s["inProgress"]),
                                       int(s["failed"])))
    return lines


def _sample(detail: Mapping[str, Any], launched_at: float) -> tuple[float, str, int, int]:
    ended = sum(1 for r in detail["runs"] if r["endTime"])
    progress = _progress(detail)
    materialized = min((p.materialized for p in progress), default=0)
    return (round(time.time() - launched_at, 1), detail["status"], ended, materialized)


def _summary(detail: Mapping[str, Any]) -> str:
    runs = _runs(detail)
    statuses: dict[str, int] = {}
    for r in runs:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    error = (detail.get("error") or {}).get("message")
    return f"runs {statuses or 'none yet'}" + (f"; error: {error}" if error else "")


def _outcome(detail: Mapping[str, Any], assets: Sequence[str], partitions: Sequence[str],
             launched_at: float, ended_seen: float,
             timeline: list[tuple[float, str, int, int]]) -> BackfillOutcome:
    runs = _runs(detail)
    ends = [r.end for r in runs if r.end]
    # The backfill's own end time (the daemon's), else when this poll first saw it ended.
    ended = detail.get("endTimestamp") or ended_seen
    return BackfillOutcome(
        backfill_id=detail["id"],
        status=detail["status"],
        partitions=list(partitions),
        assets=list(assets),
        launched_at=launched_at,
        seconds_to_last_run_end=max(ends) - launched_at if ends else None,
        seconds_to_status=ended - launched_at,
        runs=runs,
        progress=_progress(detail),
        num_partitions=detail.get("numPartitions"),
        error=(detail.get("error") or {}).get("message"),
        timeline=timeline,
    )


@contextmanager
def dagster_dev(env: Mapping[str, str], log: Path,
                start_timeout: float = START_TIMEOUT_S) -> Iterator[DagsterDev]:
    """`dagster dev -w workspace.yaml` on a free port of 127.0.0.1 in ``env`` (see
    ``server_environment``), ready for a backfill; stopped with its process group afterwards."""
    port = free_port()
    home = Path(env["DAGSTER_HOME"])
    dagster = Path(sys.executable).with_name("dagster")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        # Started from DAGSTER_HOME, as `make ui` does: dagster dev warns of a dagster.yaml in its
        # working directory unless that is DAGSTER_HOME. Its own session: SIGTERM and SIGKILL
        # reach the webserver, the daemon, the code server and every run worker they started.
        process = subprocess.Popen(
            [str(dagster), "dev", "-w", str(REPO / "workspace.yaml"),
             "-h", "127.0.0.1", "-p", str(port)],
            cwd=home, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        server = DagsterDev(process, port, log, env)
        try:
            server.wait_until_ready(start_timeout)
            yield server
        finally:
            stop_process_group(process, timeout=STOP_TIMEOUT_S)


def run_native_backfill(
    sandbox: Mapping[str, str],
    symbols: Sequence[str],
    days: Sequence[dt.date],
    settings: Mapping[str, str] | None = None,
    *,
    timeout: float = 600.0,
    log: Path | None = None,
    dagster_yaml: Path | None = None,
) -> BackfillOutcome:
    """Start `dagster dev` on ``sandbox`` (its DAGSTER_HOME and TRADING_DATA_DIR) with
    ``settings``, register ``symbols``, backfill the trading graph over ``symbols`` x ``days``
    within ``timeout`` seconds, stop the server. Its log goes beside DAGSTER_HOME unless ``log``;
    its instance is ``dagster_yaml`` if given (see ``server_environment``).
    """
    env = server_environment(sandbox, settings, symbols, dagster_yaml=dagster_yaml)
    log = log or Path(env["DAGSTER_HOME"]).parent / "dagster_dev.log"
    with dagster_dev(env, log) as server:
        server.add_partitions(symbols)
        return server.run_backfill(server.job_assets(), partition_keys(symbols, days),
                                   timeout=timeout)
