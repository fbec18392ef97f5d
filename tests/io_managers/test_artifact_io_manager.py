"""The artifact IO manager inside real Dagster runs of small multi-partitioned assets."""

# No `from __future__ import annotations`: Dagster inspects the assets' context annotations.
import datetime as dt
from pathlib import Path

import dagster as dg
import pytest

from io_managers.artifact_io_manager import ArtifactIOManager, object_uri_metadata
from io_managers.artifact_store import ArtifactStore
from io_managers.artifacts import Artifacts
from io_managers.errors import ArtifactNotFoundError, CorruptArtifactError
from io_managers.spool import ArtifactSpool
from resources.database import ArtifactDatabase
from resources.object_store import LocalObjectStore
from tests.io_managers import examples
from trading_assets.models import ChartImage, MarketData, TradingSignal

PARTITIONS = dg.MultiPartitionsDefinition(
    {
        "date": dg.DailyPartitionsDefinition(start_date="2025-01-01"),
        "symbol": dg.StaticPartitionsDefinition(["TSLA"]),
    }
)
KEY = dg.MultiPartitionKey({"date": "2025-01-02", "symbol": "TSLA"})
KEY_STRING = "2025-01-02|TSLA"
JOB = "__ephemeral_asset_job__"  # what dg.materialize names its implicit job
WORKFLOW_FIELDS = ("workflow_id", "execution_id", "step_name", "dag_id", "task_id",
                   "partition_key", "partition_date", "symbol", "object_uri", "content_hash",
                   "size_bytes", "created_at", "updated_at")


def _day(context: dg.AssetExecutionContext) -> dt.date:
    return dt.date.fromisoformat(context.partition_key.keys_by_dimension["date"])


@dg.asset(partitions_def=PARTITIONS)
def market_data(context: dg.AssetExecutionContext) -> MarketData:
    # The run id makes each materialization's value distinguishable downstream.
    return examples.market_data(_day(context), source_detail=f"run {context.run.run_id}")


@dg.asset(partitions_def=PARTITIONS)
def daily_chart(context: dg.AssetExecutionContext, market_data: MarketData) -> ChartImage:
    return examples.chart(_day(context))


@dg.asset(partitions_def=PARTITIONS)
def trading_signal(context: dg.AssetExecutionContext, market_data: MarketData) -> TradingSignal:
    return examples.signal(_day(context), reasoning=f"read {market_data.source_detail}")


@dg.asset(partitions_def=PARTITIONS)
def nothing(context: dg.AssetExecutionContext):  # no `-> None`: that would skip the IO manager
    return None


ASSETS = [market_data, daily_chart, trading_signal]


@pytest.fixture
def io_manager(tmp_path: Path) -> ArtifactIOManager:
    return ArtifactIOManager(artifacts=_artifacts(tmp_path))


def _artifacts(tmp_path: Path) -> Artifacts:
    return Artifacts(
        database=ArtifactDatabase(url=f"sqlite:///{tmp_path}/a.db"),
        object_store=LocalObjectStore(root=str(tmp_path / "objects")),
        spool=ArtifactSpool(directory=str(tmp_path / "spool")),
    )


def _store(io_manager: ArtifactIOManager) -> ArtifactStore:
    return ArtifactStore(io_manager.artifacts.database, io_manager.artifacts.object_store)


def _materialize(
    io_manager: ArtifactIOManager,
    instance: dg.DagsterInstance,
    selection: list[dg.AssetsDefinition] | None = None,
    assets: list[dg.AssetsDefinition] = ASSETS,
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        assets,
        selection=selection,
        partition_key=KEY,
        resources={"io_manager": io_manager},
        instance=instance,
        raise_on_error=False,
    )


def _failure_message(result: dg.ExecuteInProcessResult) -> str:
    failure = next(e for e in result.all_events if e.is_step_failure)
    error = failure.step_failure_data.error
    messages = []
    while error is not None:
        messages.append(error.message)
        error = error.cause
    return "\n".join(messages)


def test_every_materialization_is_stored_with_its_workflow_fields(
    io_manager: ArtifactIOManager, instance: dg.DagsterInstance
) -> None:
    first = _materialize(io_manager, instance)
    second = _materialize(io_manager, instance)
    assert first.success and second.success

    store = _store(io_manager)
    for asset, artifact_type in [("market_data", "market_data"), ("daily_chart", "chart"),
                                 ("trading_signal", "signal")]:
        rows = store.database.query(step_name=asset)
        assert [r.execution_id for r in rows] == [second.run_id, first.run_id]  # newest first
        for row in rows:
            missing = [f for f in WORKFLOW_FIELDS if getattr(row, f) in (None, "")]
            assert not missing, f"{asset} row lacks {missing}"
            assert row.type == artifact_type
            assert row.workflow_id == row.dag_id == JOB
            assert row.step_name == row.task_id == asset
            assert row.partition_key == KEY_STRING
            assert row.partition_date == examples.DAY and row.symbol == "TSLA"
            assert row.name == f"{asset}:TSLA:2025-01-02"
            assert row.mlflow_run_id is None and row.mlflow_experiment_id is None
            assert row.created_at.tzinfo is not None
            path = Path(row.object_uri.removeprefix("file://"))
            assert path.is_file() and path.stat().st_size == row.size_bytes
            root = Path(io_manager.artifacts.object_store.root).resolve()
            assert path.relative_to(root).parts[:3] == (asset, "TSLA", "2025-01-02")
            assert path.name.startswith(f"{row.execution_id}-{row.content_hash[:12]}.")
            assert store.object_store.exists(row.object_uri)

    # In-run loads read the same run's upstream artifact.
    assert second.output_for_node("trading_signal").reasoning == f"read run {second.run_id}"


def test_load_reads_the_newest_artifact(
    io_manager: ArtifactIOManager, instance: dg.DagsterInstance
) -> None:
    _materialize(io_manager, instance)
    newest = _materialize(io_manager, instance, selection=[market_data])
    downstream_only = _materialize(io_manager, instance, selection=[trading_signal])
    assert downstream_only.success
    signal = downstream_only.output_for_node("trading_signal")
    assert signal.reasoning == f"read run {newest.run_id}"
    loaded = _store(io_manager).load_latest("market_data", KEY_STRING)
    assert isinstance(loaded, MarketData) and loaded.source_detail == f"run {newest.run_id}"


def _input_observations(result: dg.ExecuteInProcessResult) -> list[dict]:
    return [
        e.asset_observation_data.asset_observation.metadata
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_OBSERVATION
    ]


def test_inputs_from_another_run_are_recorded_and_this_runs_own_are_not_reread(
    io_manager: ArtifactIOManager, instance: dg.DagsterInstance
) -> None:
    whole = _materialize(io_manager, instance)
    # Downstream steps take what this run stored: no second read, no extra input event.
    assert whole.success and _input_observations(whole) == []

    downstream_only = _materialize(io_manager, instance, selection=[trading_signal])
    (observed,) = _input_observations(downstream_only)
    row = _store(io_manager).database.latest("market_data", KEY_STRING)
    assert observed["artifact_id"].value == row.id
    assert observed["written_by_run"].value == whole.run_id


def test_output_metadata_names_the_artifact_and_charts_get_a_thumbnail(
    io_manager: ArtifactIOManager, instance: dg.DagsterInstance
) -> None:
    result = _materialize(io_manager, instance)
    metadata = {
        event.asset_key.to_user_string(): event.materialization.metadata
        for event in result.get_asset_materialization_events()
    }
    assert set(metadata) == {"market_data", "daily_chart", "trading_signal"}
    database = io_manager.artifacts.database
    for asset, entries in metadata.items():
        row = database.get(entries["artifact_id"].value)
        assert row is not None and row.step_name == asset
        assert entries["object_uri"] == dg.MetadataValue.text(row.object_uri)  # file://: text
        assert entries["artifact_page"] == dg.MetadataValue.url(
            f"http://127.0.0.1:8000/artifacts/{row.id}"
        )
        assert entries["size_bytes"].value == row.size_bytes
        assert entries["content_hash"].value == row.content_hash
    thumbnail = metadata["daily_chart"]["thumbnail"]
    assert isinstance(thumbnail, dg.MarkdownMetadataValue)
    assert thumbnail.value.startswith("![chart](data:image/png;base64,")
    assert "thumbnail" not in metadata["trading_signal"]


def test_the_artifact_page_link_follows_the_configured_browser(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    io_manager = ArtifactIOManager(
        artifacts=_artifacts(tmp_path), artifact_browser_url="https://artifacts.example.com/"
    )
    result = _materialize(io_manager, instance, selection=[market_data])
    (event,) = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["artifact_page"].value == (
        f"https://artifacts.example.com/artifacts/{metadata['artifact_id'].value}"
    )


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        ("file:///srv/data/objects/market_data/x.parquet", dg.TextMetadataValue),
        ("s3://trading-artifacts/market_data/x.parquet", dg.TextMetadataValue),
        ("https://minio.example.com/trading-artifacts/x.parquet", dg.UrlMetadataValue),
    ],
)
def test_object_uri_is_a_link_only_where_a_browser_can_open_it(uri: str, kind: type) -> None:
    value = object_uri_metadata(uri)
    assert isinstance(value, kind) and value.value == uri


def test_missing_upstream_artifact_says_what_to_materialize(
    io_manager: ArtifactIOManager, instance: dg.DagsterInstance
) -> None:
    result = _materialize(io_manager, instance, selection=[trading_signal])
    assert not result.success
    message = _failure_message(result)
    assert "no artifact for asset market_data partition 2025-01-02|TSLA" in message
    assert "materialize market_data for that partition first" in message
    with pytest.raises(ArtifactNotFoundError):
        _store(io_manager).load_latest("market_data", KEY_STRING)


def test_corrupt_object_fails_the_load_naming_the_artifact_and_the_fix(
    io_manager: ArtifactIOManager, instance: dg.DagsterInstance
) -> None:
    assert _materialize(io_manager, instance, selection=[market_data]).success
    row = io_manager.artifacts.database.latest("market_data", KEY_STRING)
    assert row is not None
    Path(row.object_uri.removeprefix("file://")).write_bytes(b"not parquet at all")

    result = _materialize(io_manager, instance, selection=[trading_signal])
    assert not result.success
    message = _failure_message(result)
    assert f"artifact #{row.id}" in message and row.object_uri in message
    assert "re-materialize market_data for partition 2025-01-02|TSLA" in message
    with pytest.raises(CorruptArtifactError, match="changed since it was written"):
        _store(io_manager).load_latest("market_data", KEY_STRING)


def test_missing_object_is_reported_as_a_broken_artifact(
    io_manager: ArtifactIOManager, instance: dg.DagsterInstance
) -> None:
    assert _materialize(io_manager, instance, selection=[market_data]).success
    row = io_manager.artifacts.database.latest("market_data", KEY_STRING)
    assert row is not None
    Path(row.object_uri.removeprefix("file://")).unlink()
    with pytest.raises(CorruptArtifactError, match="its object is missing"):
        _store(io_manager).load_latest("market_data", KEY_STRING)


def test_an_asset_returning_none_fails_clearly(
    io_manager: ArtifactIOManager, instance: dg.DagsterInstance
) -> None:
    result = _materialize(io_manager, instance, assets=[nothing])
    assert not result.success
    assert "asset nothing returned None" in _failure_message(result)
    assert io_manager.artifacts.database.query() == []
