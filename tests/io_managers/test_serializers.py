"""Every stored type survives serialize -> deserialize; bad payloads fail naming the fix."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from collections.abc import Callable
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from io_managers.errors import CorruptArtifactError
from io_managers.serializers import SerializedArtifact, deserialize, serialize
from resources.database import ArtifactRecord
from tests.io_managers import examples

NOW = dt.datetime(2025, 1, 2, 22, 0, tzinfo=dt.UTC)


def _record(serialized: SerializedArtifact, **overrides: Any) -> ArtifactRecord:
    fields = {
        "id": 7,
        "name": "asset:TSLA:2025-01-02",
        "type": serialized.artifact_type,
        "step_name": "asset",
        "partition_key": "2025-01-02|TSLA",
        "partition_date": examples.DAY,
        "symbol": "TSLA",
        "object_uri": "file:///objects/asset/TSLA/2025-01-02/run-abc.bin",
        "content_hash": hashlib.sha256(serialized.data).hexdigest(),
        "size_bytes": len(serialized.data),
        "created_at": NOW,
        "updated_at": NOW,
        **serialized.row_fields,
        **overrides,
    }
    return ArtifactRecord(**fields)


def _round_trip(value: object) -> tuple[SerializedArtifact, object]:
    serialized = serialize(value)
    # The row goes through JSON columns, so the record must be buildable from JSON-safe fields.
    json.dumps(serialized.row_fields, allow_nan=False)
    return serialized, deserialize(serialized.artifact_type, serialized.data, _record(serialized))


@pytest.mark.parametrize("artifact_type", sorted(examples.ALL))
def test_every_type_round_trips(artifact_type: str) -> None:
    value = examples.ALL[artifact_type]()
    serialized, loaded = _round_trip(value)
    assert serialized.artifact_type == artifact_type
    assert type(loaded) is type(value)
    if artifact_type == "market_data":
        assert loaded.model_dump(exclude={"bars"}) == value.model_dump(exclude={"bars"})
        pd.testing.assert_frame_equal(loaded.bars, value.bars, check_freq=False)
    else:
        assert loaded == value


def test_market_data_is_parquet_with_its_fields_in_the_schema_metadata() -> None:
    value = examples.market_data()
    serialized = serialize(value)
    assert serialized.content_type == "application/vnd.apache.parquet"
    assert serialized.extension == "parquet"
    table = pq.read_table(io.BytesIO(serialized.data))
    metadata = table.schema.metadata
    assert metadata[b"symbol"] == b"TSLA" and metadata[b"as_of"] == b"2025-01-02"
    assert metadata[b"source"] == b"synthetic" and metadata[b"source_detail"] == b"seed 42"
    assert "date" in table.column_names and table.num_rows == 30
    summary = serialized.row_fields["artifact_metadata"]
    assert summary["rows"] == 30 and summary["last_date"] == "2025-01-02"
    assert summary["source"] == "synthetic"


def test_chart_stores_the_png_and_describes_it_in_the_row() -> None:
    value = examples.chart()
    serialized = serialize(value)
    assert serialized.data == value.png
    assert (serialized.content_type, serialized.extension) == ("image/png", "png")
    assert serialized.row_fields["chart_type"] == "daily"
    chart_data = serialized.row_fields["chart_data"]
    assert "png" not in chart_data
    assert chart_data["as_of"] == "2025-01-02" and chart_data["bars_shown"] == 30


def test_llm_row_fields_carry_prompt_and_response() -> None:
    value = examples.llm()
    fields = serialize(value).row_fields
    assert fields["prompt"] == value.prompt and fields["response"] == value.response
    assert fields["prompt_length"] == len(value.prompt)
    assert fields["response_length"] == len(value.response)
    assert fields["model_name"] == "offline-rules-v1"
    assert fields["artifact_metadata"]["input_tokens"] == 1200


def test_signal_row_fields_carry_action_and_confidence() -> None:
    value = examples.signal()
    serialized = serialize(value)
    assert serialized.content_type == "application/json"
    fields = serialized.row_fields
    assert fields["action"] == "BUY" and fields["confidence"] == 85
    assert fields["signal_data"] == value.model_dump(mode="json")
    assert fields["model_name"] == "offline-rules-v1"


def test_unknown_type_names_the_supported_ones() -> None:
    with pytest.raises(TypeError) as excinfo:
        serialize({"action": "BUY"})
    message = str(excinfo.value)
    assert "builtins.dict" in message
    for name in ("MarketData", "ChartImage", "LlmAnalysis", "TradingSignal", "OrderDecision",
                 "PortfolioSnapshot"):
        assert name in message


def _corrupt(serialized: SerializedArtifact, data: bytes) -> CorruptArtifactError:
    with pytest.raises(CorruptArtifactError) as excinfo:
        deserialize(serialized.artifact_type, data, _record(serialized))
    return excinfo.value


@pytest.mark.parametrize(
    ("artifact_type", "damage"),
    [
        ("market_data", lambda data: data[: len(data) // 2]),
        ("chart", lambda data: b"GIF89a" + data[6:]),
        ("signal", lambda data: data[:-5]),
        ("signal", lambda data: json.dumps({"symbol": "TSLA"}).encode()),
        ("order", lambda data: b"\xff\xfe not utf-8"),
    ],
)
def test_unreadable_payload_names_the_artifact_and_the_fix(
    artifact_type: str, damage: Callable[[bytes], bytes]
) -> None:
    serialized = serialize(examples.ALL[artifact_type]())
    message = str(_corrupt(serialized, damage(serialized.data)))
    assert "artifact #7" in message
    assert "file:///objects/asset/TSLA/2025-01-02/run-abc.bin" in message
    assert "re-materialize asset for partition 2025-01-02|TSLA" in message


def test_chart_row_without_chart_data_is_corrupt() -> None:
    serialized = serialize(examples.chart())
    with pytest.raises(CorruptArtifactError, match="no chart_data"):
        deserialize("chart", serialized.data, _record(serialized, chart_data=None))
