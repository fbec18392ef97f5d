"""MLflow tracking as a Dagster resource: one MLflow run per call, each client call bounded.

A thin layer of ours over ``mlflow.MlflowClient`` (not dagster-mlflow, whose end-of-run hook never
fires for asset materializations). Timeouts are enforced two ways:

* every client call runs in a daemon worker thread and is abandoned after ``timeout_seconds``
  (this bounds anything: an HTTP server that accepts and never answers, a locked SQLite file, the
  first-use schema migration of a new local store);
* for HTTP(S) tracking servers, MLflow's own per-request timeout and retry budget
  (``MLFLOW_HTTP_REQUEST_TIMEOUT`` / ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` /
  ``MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR``, which MLflow only reads from the process environment)
  are set from this resource's config for the duration of a Dagster run and restored afterwards,
  so an abandoned call also gives up soon instead of retrying for minutes in the background.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import dagster as dg
from pydantic import PrivateAttr, field_validator

from sql.engine import DatabaseUrlError, mask_url, sqlite_path, url_secrets
from sql.locks import initialisation_lock

if TYPE_CHECKING:
    from mlflow import MlflowClient

T = TypeVar("T")

DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_MAX_RETRIES = 2
REMOTE_SCHEMES = frozenset({"http", "https", "databricks"})
# Tags this resource writes itself, so a re-logged run can be traced both ways.
REPLACES_TAG = "trading.replaces_run_id"
REPLACED_BY_TAG = "trading.replaced_by_run_id"
NOTE_TAG = "mlflow.note.content"
_HTTP_ENV = (
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
)
_MAX_CAUSE_CHARS = 600
# Creating a local SQLite store (its ~140 migrations, 5-15 s; longer while other first runs share
# the CPU) may take longer than one call to a server is allowed to.
LOCAL_STORE_INIT_SECONDS = 180.0


class MlflowTrackingError(RuntimeError):
    """MLflow could not be reached or refused a call; the message says which call and what to do."""


class MlflowTimeoutError(MlflowTrackingError):
    """An MLflow call did not finish within the configured timeout."""


def mask_uri(uri: str) -> str:
    """``uri`` safe to print: the password (or a bare user token) and secret query values hidden."""
    return mask_url(str(uri))


def local_store_path(uri: str) -> Path | None:
    """The SQLite file of a local store (``sqlite:///path``); None for servers and the rest."""
    if not str(uri).strip().lower().startswith("sqlite:"):
        return None
    try:
        path = sqlite_path(str(uri))
    except DatabaseUrlError:
        return None
    return path.resolve() if path is not None else None


def is_remote_uri(uri: str) -> bool:
    """True for a tracking server (HTTP(S), Databricks); False for a local store (SQLite, ...)."""
    return urlsplit(uri.strip()).scheme.lower() in REMOTE_SCHEMES


def _as_uri(location: str) -> str:
    # A plain folder becomes file:///abs/path: MLflow resolves relative paths against the cwd.
    return location if "://" in location else Path(location).resolve().as_uri()


@dataclass(frozen=True)
class RunSpec:
    """Everything one MLflow run holds. ``identity`` is the tag that names "the same thing" across
    runs (here: the partition), used to find the run a new one replaces."""

    experiment_name: str
    run_name: str
    identity: tuple[str, str]
    tags: Mapping[str, str]
    params: Mapping[str, str]
    metrics: Mapping[str, float]
    files: Mapping[str, bytes] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class LoggedRun:
    run_id: str
    experiment_id: str
    experiment_name: str
    artifact_uri: str
    replaced_run_id: str | None
    url: str | None
    files: tuple[str, ...]


class MlflowTracking(dg.ConfigurableResource):
    """Logs runs to the MLflow tracking store at ``tracking_uri`` with bounded calls.

    ``artifact_root`` is where experiments this resource creates keep their artifacts; None lets a
    tracking server decide (its ``--default-artifact-root`` / proxied ``mlflow-artifacts:``).
    Credentials for a server come from MLflow's own variables (``MLFLOW_TRACKING_USERNAME`` /
    ``MLFLOW_TRACKING_PASSWORD`` / ``MLFLOW_TRACKING_TOKEN``) or the URI; they are never printed.
    """

    tracking_uri: str = "sqlite:///data/mlflow.db"
    artifact_root: str | None = "data/mlartifacts"
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    max_retries: int = DEFAULT_MAX_RETRIES

    _client: Any = PrivateAttr(default=None)
    _saved_env: dict[str, str | None] | None = PrivateAttr(default=None)

    @field_validator("timeout_seconds")
    @classmethod
    def _positive_timeout(cls, value: float) -> float:
        if not value > 0 or not math.isfinite(value):
            raise ValueError(
                f"MLflow timeout must be a positive number of seconds, got {value} "
                "(set MLFLOW_TIMEOUT_SECONDS, e.g. 30)"
            )
        return value

    @field_validator("max_retries")
    @classmethod
    def _bounded_retries(cls, value: int) -> int:
        if not 0 <= value <= 10:
            raise ValueError(
                f"MLflow retries must be between 0 and 10, got {value} (set MLFLOW_MAX_RETRIES)"
            )
        return value

    # -- people-facing ------------------------------------------------------------------------

    def masked_uri(self) -> str:
        return mask_uri(self.tracking_uri)

    def is_remote(self) -> bool:
        return is_remote_uri(self.tracking_uri)

    def describe(self) -> str:
        artifacts = _as_uri(self.artifact_root) if self.artifact_root else "as the server decides"
        return (
            f"{self.masked_uri()} (artifacts: {artifacts}; {self.timeout_seconds:g} s per call, "
            f"{self.max_retries} HTTP retries)"
        )

    def run_url(self, experiment_id: str, run_id: str) -> str | None:
        """The run's page in the MLflow UI, when the store is a server (no credentials in it)."""
        if urlsplit(self.tracking_uri).scheme.lower() not in ("http", "https"):
            return None
        parts = urlsplit(self.tracking_uri)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            secret = name == "tracking_uri" and isinstance(value, str)
            yield name, (mask_uri(value) if secret and not isinstance(value, dg.EnvVar) else value)

    # -- lifecycle ----------------------------------------------------------------------------

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if self.is_remote():
            self._apply_http_limits()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self._restore_http_limits()

    def _apply_http_limits(self) -> None:
        """MLflow reads its HTTP timeout and retry budget from the process environment only."""
        if self._saved_env is None:
            self._saved_env = {name: os.environ.get(name) for name in _HTTP_ENV}
        os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(max(1, math.ceil(self.timeout_seconds)))
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(self.max_retries)
        os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = "1"

    def _restore_http_limits(self) -> None:
        if self._saved_env is None:
            return
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = None

    # -- bounded calls ------------------------------------------------------------------------

    def call(self, what: str, fn: Callable[[], T], timeout_seconds: float | None = None) -> T:
        """``fn()`` in a worker thread, abandoned after ``timeout_seconds`` (the resource's own
        unless given).

        Any failure becomes an MlflowTrackingError naming the call and the (masked) store; the
        original exception is summarised in the message rather than chained, because MLflow
        puts request URLs (possibly with credentials) in its messages.
        """
        outcome: dict[str, Any] = {}
        done = threading.Event()

        def target() -> None:
            try:
                outcome["value"] = fn()
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                outcome["error"] = exc
            finally:
                done.set()

        # A daemon thread: a call stuck in a socket cannot keep the process alive at exit.
        worker = threading.Thread(target=target, name=f"mlflow: {what}", daemon=True)
        started = time.monotonic()
        worker.start()
        timeout = self.timeout_seconds if timeout_seconds is None else timeout_seconds
        if not done.wait(timeout):
            raise MlflowTimeoutError(
                f"MLflow did not finish '{what}' within {timeout:g} s at "
                f"{self.masked_uri()}: check that the tracking server is up and answering "
                "(or raise MLFLOW_TIMEOUT_SECONDS)"
            )
        error = outcome.get("error")
        if error is not None:
            if isinstance(error, MlflowTrackingError):
                raise error
            elapsed = time.monotonic() - started
            raise MlflowTrackingError(
                f"MLflow '{what}' failed after {elapsed:.1f} s at {self.masked_uri()}: "
                f"{type(error).__name__}: {self._scrub(str(error))}"
            ) from None
        return outcome["value"]

    def _scrub(self, text: str) -> str:
        raw = str(self.tracking_uri)
        text = text.replace(raw, self.masked_uri())
        # Longest first: a secret that contains another is replaced whole.
        for secret in sorted(url_secrets(raw), key=len, reverse=True):
            text = text.replace(secret, "***")
        text = " ".join(text.split())
        if len(text) > _MAX_CAUSE_CHARS:
            text = text[:_MAX_CAUSE_CHARS] + " ..."
        return text

    def client(self) -> MlflowClient:
        """The MLflow client, created (and a new local store initialised) within the deadline."""
        if self._client is None:
            # Imported here: mlflow takes seconds to import and only this step needs it.
            from mlflow import MlflowClient

            if self.is_remote():
                self._apply_http_limits()
            uri = str(self.tracking_uri)
            store = local_store_path(uri)
            if store is None:
                self._client = self.call("connect", lambda: MlflowClient(tracking_uri=uri))
                return self._client
            # A new local store runs ~140 migrations, which break when two processes run them
            # at once (first runs started together): one process migrates, the others wait.
            deadline = max(self.timeout_seconds, LOCAL_STORE_INIT_SECONDS)

            def connect() -> MlflowClient:
                with initialisation_lock(store, timeout_seconds=deadline):
                    return MlflowClient(tracking_uri=uri)

            self._client = self.call("connect", connect, timeout_seconds=deadline)
        return self._client

    # -- the one operation the pipeline needs -------------------------------------------------

    def log_run(self, spec: RunSpec) -> LoggedRun:
        """Create one finished MLflow run holding ``spec``; tag the run it replaces, if any.

        A run that fails part-way is marked FAILED (best effort) and the error raised, so a retry
        starts a clean run and the replaced run stays the last FINISHED one.
        """
        key, value = spec.identity
        if "'" in value or "`" in key:
            raise ValueError(f"identity tag {key}={value!r} cannot be used in an MLflow filter")
        for path in spec.files:
            _check_artifact_path(path)
        client = self.client()
        experiment_id = self.call(
            f"get or create experiment {spec.experiment_name}",
            lambda: self._experiment_id(client, spec.experiment_name),
        )
        previous = self.call(
            f"find the previous run for {value}",
            lambda: client.search_runs(
                [experiment_id],
                filter_string=f"tags.`{key}` = '{value}' and attributes.status = 'FINISHED'",
                order_by=["attributes.start_time DESC"],
                max_results=1,
            ),
        )
        replaced = previous[0].info.run_id if previous else None
        tags = {**spec.tags, key: value}
        note = spec.note
        if replaced:
            tags[REPLACES_TAG] = replaced
            note = f"{note}\n\nReplaces run `{replaced}` of the same {key}.".strip()
        if note:
            tags[NOTE_TAG] = note
        run = self.call(
            "create run",
            lambda: client.create_run(experiment_id, run_name=spec.run_name, tags=tags),
        )
        run_id = run.info.run_id
        try:
            self.call("log params and metrics", lambda: self._log_values(client, run_id, spec))
            if spec.files:
                self.call("log artifacts", lambda: _log_files(client, run_id, spec.files))
            if replaced:
                self.call(
                    "tag the replaced run",
                    lambda: client.set_tag(replaced, REPLACED_BY_TAG, run_id),
                )
            self.call("finish run", lambda: client.set_terminated(run_id, "FINISHED"))
        except MlflowTrackingError as exc:
            state = "left unfinished"
            # Best effort: the first error is the one that explains what happened.
            with contextlib.suppress(MlflowTrackingError):
                self.call("mark run failed", lambda: client.set_terminated(run_id, "FAILED"))
                state = "marked FAILED"
            raise MlflowTrackingError(f"{exc} (MLflow run {run_id} {state})") from None
        return LoggedRun(
            run_id=run_id,
            experiment_id=experiment_id,
            experiment_name=spec.experiment_name,
            artifact_uri=run.info.artifact_uri,
            replaced_run_id=replaced,
            url=self.run_url(experiment_id, run_id),
            files=tuple(sorted(spec.files)),
        )

    def _experiment_id(self, client: MlflowClient, name: str) -> str:
        from mlflow.exceptions import MlflowException

        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            location = None
            if self.artifact_root:
                location = f"{_as_uri(self.artifact_root).rstrip('/')}/{name}"
            try:
                return client.create_experiment(name, artifact_location=location)
            except MlflowException as exc:
                # Another partition's run created it a moment ago.
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                experiment = client.get_experiment_by_name(name)
                if experiment is None:
                    raise
        if experiment.lifecycle_stage == "deleted":
            raise MlflowTrackingError(
                f"MLflow experiment {name} (id {experiment.experiment_id}) is deleted at "
                f"{self.masked_uri()}: restore it (`mlflow experiments restore --experiment-id "
                f"{experiment.experiment_id}`) or purge it (`mlflow gc`) so it can be recreated"
            )
        return experiment.experiment_id

    @staticmethod
    def _log_values(client: MlflowClient, run_id: str, spec: RunSpec) -> None:
        from mlflow.entities import Metric, Param

        now = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in spec.metrics.items()],
            params=[Param(k, str(v)) for k, v in spec.params.items()],
        )


def _check_artifact_path(path: str) -> None:
    parts = PurePosixPath(path).parts
    if not parts or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"artifact path {path!r} must be relative, like 'charts/daily.png'")


def _log_files(client: MlflowClient, run_id: str, files: Mapping[str, bytes]) -> None:
    # Written to a private temp folder (never the working directory), uploaded in one call.
    with tempfile.TemporaryDirectory(prefix="mlflow-run-") as folder:
        for path, data in files.items():
            target = Path(folder, *PurePosixPath(path).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        client.log_artifacts(run_id, folder)
