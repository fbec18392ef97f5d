"""The mlflow_run asset: a symbol-day's decision logged as one MLflow run, after the trading graph.

It hangs below ``portfolio`` alone, which comes after the other six (it needs the order, which
needs the signal, the analysis and both charts), and reads all seven stored artifacts itself (a
``deps`` edge, not inputs): one edge in the lineage graph instead of seven, the same order of
steps. MLflow being down or slow can only fail this step: the order and portfolio are already
stored, and the step can be re-materialized alone for the partition once MLflow answers.
"""

# No `from __future__ import annotations`: Dagster must see the resource types.
from typing import Any

import dagster as dg

from io_managers.artifact_store import ArtifactStore
from io_managers.artifacts import Artifacts
from resources.mlflow_tracking import MlflowTracking, MlflowTrackingError
from trading_assets.partitions import symbol_day
from trading_assets.ranged import RANGED, Partition, partitions
from trading_assets.tracking.record import build_run_spec, load_outcome


# One step retry with backoff for a blip; each attempt is bounded by the resource's per-call
# timeout, and a failed attempt's MLflow run is marked FAILED so the retry starts clean.
@dg.asset(
    partitions_def=symbol_day,
    group_name="tracking",
    kinds={"mlflow"},
    deps=["portfolio"],
    backfill_policy=RANGED,
    retry_policy=dg.RetryPolicy(
        max_retries=1, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
    ),
    description=(
        "The partition's decision as one MLflow run in trading_workflow_{symbol} (both charts, "
        "signal, order, portfolio; params and metrics); its artifact rows get the run's ids."
    ),
)
def mlflow_run(
    context: dg.AssetExecutionContext,
    mlflow: MlflowTracking,
    artifacts: Artifacts,
) -> dg.MaterializeResult:
    store = artifacts.store(context.log)
    for partition in partitions(context):
        context.add_asset_metadata(
            _log_partition(context, mlflow, artifacts, store, partition),
            partition_key=partition.key,
        )
    return dg.MaterializeResult()


def _log_partition(
    context: dg.AssetExecutionContext,
    mlflow: MlflowTracking,
    artifacts: Artifacts,
    store: ArtifactStore,
    partition: Partition,
) -> dict[str, Any]:
    symbol, day, partition_key = partition.symbol, partition.day, partition.key
    outcome = load_outcome(store, partition_key)
    spec = build_run_spec(
        outcome,
        symbol=symbol,
        day=day,
        partition_key=partition_key,
        dagster_run_id=context.run.run_id,
        job_name=context.job_name,
    )
    try:
        logged = mlflow.log_run(spec)
    except MlflowTrackingError as exc:
        raise MlflowTrackingError(
            f"{exc}. The partition's own artifacts are stored (rows "
            f"{', '.join(f'#{i}' for i in outcome.artifact_ids())}); once MLflow answers, "
            f"re-materialize only mlflow_run for partition {partition_key} (Dagster UI: "
            "mlflow_run > Materialize selected, or `dagster asset materialize -m "
            f"trading_assets.definitions --select mlflow_run --partition '{partition_key}'`)"
        ) from None
    updated = artifacts.database.set_mlflow_ids(
        outcome.artifact_ids(),
        partition_key=partition_key,
        run_id=logged.run_id,
        experiment_id=logged.experiment_id,
    )
    context.log.info(
        f"logged {partition_key} as MLflow run {logged.run_id} in {logged.experiment_name} at "
        f"{mlflow.masked_uri()}"
        + (f", replacing run {logged.replaced_run_id}" if logged.replaced_run_id else "")
    )
    metadata: dict[str, Any] = {
        "mlflow_run_id": logged.run_id,
        "mlflow_experiment_id": logged.experiment_id,
        "mlflow_experiment": logged.experiment_name,
        "tracking_uri": mlflow.masked_uri(),
        "artifact_uri": logged.artifact_uri,
        "logged_files": dg.MetadataValue.json(list(logged.files)),
        "artifact_rows_updated": updated,
        "replaced_run_id": logged.replaced_run_id or "",
    }
    if logged.url:
        metadata["mlflow_run_url"] = dg.MetadataValue.url(logged.url)
    return metadata
