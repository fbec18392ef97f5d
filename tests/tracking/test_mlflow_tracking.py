"""The MLflow resource on its own: bounded calls, masked credentials, settings from the env."""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import dagster as dg
import pytest

from resources.mlflow_tracking import (
    MlflowTimeoutError,
    MlflowTracking,
    MlflowTrackingError,
    RunSpec,
    mask_uri,
)
from tests.tracking.helpers import unreachable_url
from trading_assets.environment import resources_from_environment

SPEC = RunSpec(
    experiment_name="trading_workflow_TEST",
    run_name="TEST 2025-01-02",
    identity=("dagster.partition", "2025-01-02|TEST"),
    tags={"trading.action": "HOLD"},
    params={"symbol": "TEST"},
    metrics={"confidence": 42.0},
    files={"signal.json": b"{}"},
)

# MLflow's own SQLAlchemy models, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy")


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A port that accepts connections and never answers: a hung tracking server."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def _resolved(resource: MlflowTracking) -> Iterator[MlflowTracking]:
    with dg.build_resources({"mlflow": resource}) as built:
        yield built.mlflow


def test_a_hung_server_fails_within_the_timeout(silent_server: str) -> None:
    tracking = MlflowTracking(tracking_uri=silent_server, artifact_root=None, timeout_seconds=1.5)
    for mlflow in _resolved(tracking):
        mlflow.client()  # the import and client creation: no network yet
        started = time.monotonic()
        with pytest.raises(MlflowTimeoutError, match=r"within 1.5 s at http://127\.0\.0\.1"):
            mlflow.log_run(SPEC)
        assert time.monotonic() - started < 8  # the 1.5 s timeout, room for a loaded machine


def test_a_closed_port_fails_fast_with_the_reason_and_no_password() -> None:
    url = unreachable_url().replace("http://", "http://ci:hunter2@")
    tracking = MlflowTracking(tracking_uri=url, artifact_root=None, timeout_seconds=5,
                              max_retries=0)
    for mlflow in _resolved(tracking):
        mlflow.client()
        started = time.monotonic()
        with pytest.raises(MlflowTrackingError) as info:
            mlflow.log_run(SPEC)
        assert time.monotonic() - started < 5
    message = str(info.value)
    assert "Connection refused" in message and "ci:***@127.0.0.1" in message
    assert "hunter2" not in message and info.value.__cause__ is None


def test_http_limits_are_set_for_the_run_and_restored_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "120")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    tracking = MlflowTracking(tracking_uri="http://127.0.0.1:5000", timeout_seconds=7.5,
                              max_retries=1)
    for _ in _resolved(tracking):
        assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "8"
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "1"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "120"
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("http://alice:pw@mlflow:5000", "http://alice:***@mlflow:5000"),
        ("https://token@mlflow.example.com/x", "https://***@mlflow.example.com/x"),
        ("postgresql://u:pw@db:5432/mlflow?sslkey=k", "postgresql://u:***@db:5432/mlflow?sslkey=***"),
        (
            "postgresql://u:p@ss@db/mlflow?sslmode=require&PASSWORD=q&sslpassword=r",
            "postgresql://u:***@db/mlflow?sslmode=require&PASSWORD=***&sslpassword=***",
        ),
        ("https://mlflow.example.com/?token=abc", "https://mlflow.example.com/?token=***"),
        ("/srv/data/mlruns", "/srv/data/mlruns"),
        ("u:pw@mlflow:5000", "*** (unparseable URL, hidden)"),
        ("sqlite:////srv/data/mlflow.db", "sqlite:////srv/data/mlflow.db"),
        ("http://mlflow:5000", "http://mlflow:5000"),
    ],
)
def test_tracking_uris_are_masked(uri: str, shown: str) -> None:
    assert mask_uri(uri) == shown


def test_default_is_a_local_store_in_the_data_folder(tmp_path: Path) -> None:
    mlflow = resources_from_environment({"TRADING_DATA_DIR": str(tmp_path)})["mlflow"]
    data = tmp_path.resolve()
    assert mlflow.tracking_uri == f"sqlite:///{data / 'mlflow.db'}"
    assert mlflow.artifact_root == str(data / "mlartifacts")
    assert mlflow.timeout_seconds == 30 and mlflow.max_retries == 2
    assert "s per call" in mlflow.describe()


def test_a_server_uri_keeps_artifacts_where_the_server_says(data_env: dict[str, str]) -> None:
    env = {**data_env, "MLFLOW_TRACKING_URI": "http://bob:pw@mlflow:5000",
           "MLFLOW_TIMEOUT_SECONDS": "10", "MLFLOW_MAX_RETRIES": "1"}
    mlflow = resources_from_environment(env)["mlflow"]
    assert mlflow.artifact_root is None and mlflow.timeout_seconds == 10
    assert "pw" not in mlflow.describe() and "pw" not in repr(mlflow)
    assert mlflow.run_url("1", "abc") == "http://mlflow:5000/#/experiments/1/runs/abc"


def test_bad_limits_name_the_variable(data_env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="MLFLOW_TIMEOUT_SECONDS"):
        resources_from_environment({**data_env, "MLFLOW_TIMEOUT_SECONDS": "0"})
    with pytest.raises(ValueError, match="MLFLOW_MAX_RETRIES"):
        resources_from_environment({**data_env, "MLFLOW_MAX_RETRIES": "50"})


def test_a_run_that_fails_part_way_is_marked_failed_and_never_counted_as_replaced(
    tmp_path: Path, mlflow_template: Path
) -> None:
    from mlflow import MlflowClient

    shutil.copyfile(mlflow_template, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    blocker = tmp_path / "artifacts"
    blocker.write_text("a file where the artifact folder should be")
    tracking = MlflowTracking(tracking_uri=uri, artifact_root=str(blocker), timeout_seconds=30)
    for mlflow in _resolved(tracking):
        with pytest.raises(MlflowTrackingError, match=r"'log artifacts' failed.*marked FAILED"):
            mlflow.log_run(SPEC)
        blocker.unlink()
        logged = mlflow.log_run(SPEC)
    client = MlflowClient(tracking_uri=uri)
    statuses = sorted(r.info.status for r in client.search_runs([logged.experiment_id]))
    assert statuses == ["FAILED", "FINISHED"]
    assert logged.replaced_run_id is None
    assert client.get_run(logged.run_id).data.metrics == {"confidence": 42.0}
