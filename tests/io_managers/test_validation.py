"""An artifact is validated before anything is written: a bad one names the field that is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from io_managers.artifact_store import ArtifactStore
from io_managers.validation import MAX_BYTES, ArtifactValidationError, validate_artifact
from tests.io_managers import examples

KEY = "2025-01-02|TSLA"


def _prepare(store: ArtifactStore, value: object, asset: str, **overrides: object):  # noqa: ANN202
    context = dict(
        asset_name=asset, symbol="TSLA", partition_key=KEY, partition_date=examples.DAY,
        job_name="trading_signals_job", run_id="run-1", step_key=asset,
    )
    context.update(overrides)
    return store.prepare(value, **context)


@pytest.mark.parametrize(
    ("asset", "factory"),
    [
        ("market_data", examples.market_data),
        ("daily_chart", examples.chart),
        ("llm_analysis", examples.llm),
        ("trading_signal", examples.signal),
        ("order", examples.order),
        ("portfolio", examples.portfolio),
    ],
)
def test_every_value_the_graph_stores_is_valid(
    store: ArtifactStore, asset: str, factory: object
) -> None:
    prepared = _prepare(store, factory(), asset)  # type: ignore[operator]
    validate_artifact(prepared.record, prepared.payload)  # no error
    assert prepared.record.write_key and len(prepared.record.write_key) == 64


def _rejected(store: ArtifactStore, field: str, **changes: object) -> str:
    prepared = _prepare(store, examples.signal(), "trading_signal")
    record = prepared.record.model_copy(update=changes)
    with pytest.raises(ArtifactValidationError) as caught:
        validate_artifact(record, prepared.payload)
    message = str(caught.value)
    assert f"field `{field}`" in message, message
    return message


def test_a_value_of_the_wrong_kind_for_its_asset_is_rejected(store: ArtifactStore) -> None:
    with pytest.raises(ArtifactValidationError, match="field `type`.*asset order stores 'order'"):
        _prepare(store, examples.signal(), "order")


def test_a_partition_key_that_disagrees_with_symbol_and_date_is_rejected(
    store: ArtifactStore,
) -> None:
    message = _rejected(store, "partition_key", partition_key="2025-01-03|TSLA")
    assert "expected '2025-01-02|TSLA'" in message


def test_a_symbol_that_is_not_a_ticker_is_rejected(store: ArtifactStore) -> None:
    _rejected(store, "symbol", symbol="TS|LA", partition_key="2025-01-02|TS|LA")


def test_missing_workflow_context_is_rejected(store: ArtifactStore) -> None:
    _rejected(store, "execution_id", execution_id=None)
    _rejected(store, "task_id", task_id="")


def test_signal_fields_are_checked(store: ArtifactStore) -> None:
    _rejected(store, "action", action="MAYBE")
    _rejected(store, "confidence", confidence=140.0)
    _rejected(store, "signal_data", signal_data=None)


def test_a_chart_without_its_type_is_rejected(store: ArtifactStore) -> None:
    prepared = _prepare(store, examples.chart(), "daily_chart")
    with pytest.raises(ArtifactValidationError, match="field `chart_type`"):
        validate_artifact(prepared.record.model_copy(update={"chart_type": None}), prepared.payload)


def test_size_and_hash_must_match_the_payload(store: ArtifactStore) -> None:
    prepared = _prepare(store, examples.signal(), "trading_signal")
    with pytest.raises(ArtifactValidationError, match="field `size_bytes` is 1, but the payload"):
        validate_artifact(prepared.record.model_copy(update={"size_bytes": 1}), prepared.payload)
    with pytest.raises(ArtifactValidationError, match="field `content_hash`"):
        validate_artifact(
            prepared.record.model_copy(update={"content_hash": "nope"}), prepared.payload
        )


def test_a_payload_over_the_size_limit_is_rejected(store: ArtifactStore) -> None:
    prepared = _prepare(store, examples.signal(), "trading_signal")
    huge = b"x" * (MAX_BYTES["signal"] + 1)
    record = prepared.record.model_copy(update={"size_bytes": len(huge)})
    with pytest.raises(ArtifactValidationError, match=r"over the 1 MB limit for signal"):
        validate_artifact(record, huge)


def test_write_validates_before_touching_the_stores(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(ArtifactValidationError):
        store.write(
            examples.signal(), asset_name="order", symbol="TSLA", partition_key=KEY,
            partition_date=examples.DAY, job_name="j", run_id="r", step_key="order",
        )
    assert not (tmp_path / "objects").exists()
    assert store.database.query() == []
