"""The mlflow_run step on the local store (the embedded default) and on a real `mlflow server`:
one run per partition, readable back through the MLflow client, ids on the artifact rows."""

from __future__ import annotations

import json
import time
from pathlib import Path

import dagster as dg
import pytest
from mlflow import MlflowClient

from resources.mlflow_tracking import REPLACED_BY_TAG, REPLACES_TAG
from tests.tracking.helpers import (
    PARTITION,
    SEED_RUN_ID,
    SYMBOL,
    materialize_tracking,
    seed_partition,
    store_for,
    unreachable_url,
)
from trading_assets.tracking.record import PAYLOAD_FILES

# MLflow's own SQLAlchemy models, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy")


def _run_metadata(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    (event,) = result.get_asset_materialization_events()
    return {k: v.value for k, v in event.materialization.metadata.items()}


def _assert_run_readable(client: MlflowClient, env: dict[str, str], run_id: str) -> None:
    """Tags, params, metrics and artifacts as SPEC.md lists them, read back through MLflow."""
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == f"trading_workflow_{SYMBOL}"
    tags = run.data.tags
    assert tags["dagster.partition"] == str(PARTITION)
    assert tags["dagster.job"] == "__ephemeral_asset_job__"  # run alone, as a user re-runs it
    assert tags["dagster.artifacts_run_ids"] == SEED_RUN_ID
    assert tags["trading.provider"] == "offline" and tags["trading.model"] == "offline-rules-v1"
    assert tags["trading.action"] == "BUY"
    assert tags["mlflow.runName"] == "TSLA 2025-01-02"
    params = run.data.params
    assert params["symbol"] == SYMBOL and params["provider"] == "offline"
    assert params["model"] == "offline-rules-v1" and params["position_size_pct"] == "5"
    metrics = run.data.metrics
    assert metrics["latest_price"] == pytest.approx(129.0)
    assert metrics["confidence"] == 85
    assert metrics["portfolio_value"] == pytest.approx(100_011.0)
    assert metrics["order_placed"] == 1.0

    listed = {a.path for a in client.list_artifacts(run_id)}
    assert {"charts", "llm", "signal.json", "order.json", "portfolio.json",
            "artifacts.json"} <= listed
    # The logged charts and JSON are the stored artifacts, byte for byte.
    store = store_for(env)
    download = Path(client.download_artifacts(run_id, ""))
    for path, asset in PAYLOAD_FILES.items():
        record = store.database.latest(asset, str(PARTITION))
        assert (download / path).read_bytes() == store.read_payload(record), path
    manifest = json.loads((download / "artifacts.json").read_text())
    assert set(manifest) == {"market_data", *PAYLOAD_FILES.values(), "llm_analysis"}


def _rows_carry(env: dict[str, str], run_id: str, experiment_id: str) -> None:
    rows = store_for(env).database.query(execution_id=SEED_RUN_ID)
    assert len(rows) == 7
    assert {(r.mlflow_run_id, r.mlflow_experiment_id) for r in rows} == {(run_id, experiment_id)}


def test_local_store_logs_one_run_per_partition_and_rematerializing_replaces_it(
    tracking_env: dict[str, str], instance: dg.DagsterInstance
) -> None:
    seed_partition(tracking_env)
    first = materialize_tracking(tracking_env, instance)
    assert first.success
    meta = _run_metadata(first)
    run_id, experiment_id = meta["mlflow_run_id"], meta["mlflow_experiment_id"]
    assert meta["artifact_rows_updated"] == 7 and meta["replaced_run_id"] == ""

    data = Path(tracking_env["TRADING_DATA_DIR"]).resolve()
    client = MlflowClient(tracking_uri=f"sqlite:///{data / 'mlflow.db'}")
    _assert_run_readable(client, tracking_env, run_id)
    # The local store keeps its artifacts in the data folder, never the working directory.
    assert client.get_run(run_id).info.artifact_uri.startswith((data / "mlartifacts").as_uri())
    assert not Path("mlruns").exists()
    _rows_carry(tracking_env, run_id, experiment_id)

    second = materialize_tracking(tracking_env, instance)
    assert second.success
    new_id = _run_metadata(second)["mlflow_run_id"]
    assert new_id != run_id
    assert client.get_run(new_id).data.tags[REPLACES_TAG] == run_id
    assert f"Replaces run `{run_id}`" in client.get_run(new_id).data.tags["mlflow.note.content"]
    assert client.get_run(run_id).data.tags[REPLACED_BY_TAG] == new_id
    assert _run_metadata(second)["replaced_run_id"] == run_id
    _rows_carry(tracking_env, new_id, experiment_id)
    runs = client.search_runs([experiment_id])
    assert len(runs) == 2


def test_unreachable_server_fails_the_step_within_the_timeout_and_keeps_the_artifacts(
    data_env: dict[str, str], instance: dg.DagsterInstance
) -> None:
    env = {**data_env, "MLFLOW_TRACKING_URI": unreachable_url(),
           "MLFLOW_TIMEOUT_SECONDS": "3", "MLFLOW_MAX_RETRIES": "0"}
    ids = seed_partition(env)
    started = time.monotonic()
    result = materialize_tracking(env, instance)
    elapsed = time.monotonic() - started
    assert not result.success
    # Two attempts (the step's one retry, 2 s +- jitter apart), each bounded by the 3 s timeout.
    assert elapsed < 20, elapsed
    failures = [e for e in result.all_events if e.is_step_failure]
    message = failures[-1].step_failure_data.error.to_string()
    assert "MLflow" in message and "127.0.0.1" in message
    assert "re-materialize only mlflow_run for partition 2025-01-02|TSLA" in message
    rows = store_for(env).database.query(execution_id=SEED_RUN_ID)
    assert sorted(r.id for r in rows) == sorted(ids.values())
    assert {r.mlflow_run_id for r in rows} == {None}


@pytest.mark.integration
def test_a_real_mlflow_server_holds_the_run_and_the_rows_its_ids(
    data_env: dict[str, str], instance: dg.DagsterInstance, mlflow_server: str
) -> None:
    env = {**data_env, "MLFLOW_TRACKING_URI": mlflow_server, "MLFLOW_TIMEOUT_SECONDS": "20"}
    seed_partition(env)
    first = materialize_tracking(env, instance)
    assert first.success
    meta = _run_metadata(first)
    run_id, experiment_id = meta["mlflow_run_id"], meta["mlflow_experiment_id"]
    assert meta["mlflow_run_url"] == f"{mlflow_server}/#/experiments/{experiment_id}/runs/{run_id}"
    client = MlflowClient(tracking_uri=mlflow_server)
    _assert_run_readable(client, env, run_id)
    # Artifacts go through the server (proxied), not to a local folder of this process.
    assert client.get_run(run_id).info.artifact_uri.startswith("mlflow-artifacts:")
    _rows_carry(env, run_id, experiment_id)

    second = materialize_tracking(env, instance)
    new_id = _run_metadata(second)["mlflow_run_id"]
    assert client.get_run(new_id).data.tags[REPLACES_TAG] == run_id
    _rows_carry(env, new_id, experiment_id)
