"""ArtifactStore without Dagster: what the CLI and asset checks rely on."""

from __future__ import annotations

from pathlib import Path

import pytest

from io_managers.artifact_store import ArtifactStore, object_key
from io_managers.errors import CorruptArtifactError
from tests.io_managers import examples

KEY = "2025-01-02|TSLA"


def _write(store: ArtifactStore, value: object, asset: str, run_id: str = "run-1") -> object:
    return store.write(
        value, asset_name=asset, symbol="TSLA", partition_key=KEY, partition_date=examples.DAY,
        job_name="trading_signals_job", run_id=run_id, step_key=asset,
    )


def test_object_key_layout() -> None:
    key = object_key("daily_chart", "BRK.B", examples.DAY, "abc-123", "f" * 64, "png")
    assert key == "daily_chart/BRK.B/2025-01-02/abc-123-ffffffffffff.png"


def test_write_fills_the_row_and_read_payload_returns_the_bytes(store: ArtifactStore) -> None:
    record = _write(store, examples.llm(), "llm_analysis")
    assert record.id is not None and store.database.get(record.id) == record
    assert record.type == "llm" and record.prompt_length == len(examples.llm().prompt)
    assert record.artifact_metadata["content_type"] == "application/json"
    assert record.artifact_metadata["object_key"].startswith("llm_analysis/TSLA/2025-01-02/run-1-")
    assert store.read_payload(record) == examples.llm().model_dump_json().encode()


def test_chart_rows_point_image_path_at_the_object(store: ArtifactStore) -> None:
    record = _write(store, examples.chart(), "daily_chart")
    assert record.image_path == record.object_uri and record.chart_type == "daily"
    assert store.load(record) == examples.chart()


def test_load_latest_returns_the_newest(store: ArtifactStore) -> None:
    _write(store, examples.signal(reasoning="first"), "trading_signal", run_id="run-1")
    _write(store, examples.signal(reasoning="second"), "trading_signal", run_id="run-2")
    assert store.load_latest("trading_signal", KEY).reasoning == "second"


def test_a_value_for_another_symbol_is_refused_before_anything_is_stored(
    store: ArtifactStore,
) -> None:
    nvda = examples.signal().model_copy(update={"symbol": "NVDA"})
    with pytest.raises(ValueError, match="returned a value for symbol NVDA in partition"):
        _write(store, nvda, "trading_signal")
    assert store.database.query() == []


def test_hash_mismatch_is_corrupt_even_when_the_payload_still_parses(
    store: ArtifactStore,
) -> None:
    record = _write(store, examples.signal(), "trading_signal")
    altered = examples.signal(reasoning="tampered").model_dump_json().encode()
    Path(record.object_uri.removeprefix("file://")).write_bytes(altered)
    with pytest.raises(CorruptArtifactError) as excinfo:
        store.read_payload(record)
    message = str(excinfo.value)
    assert f"artifact #{record.id}" in message and record.object_uri in message
    assert "re-materialize trading_signal for partition 2025-01-02|TSLA" in message
    assert "trading-signals run --date 2025-01-02 --symbols TSLA" in message
