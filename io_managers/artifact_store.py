"""Write and read artifacts (object payload + ``artifacts`` row) without needing Dagster.

The IO manager, the CLI and asset checks all go through this one class.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from io_managers.errors import ArtifactNotFoundError, CorruptArtifactError
from io_managers.serializers import deserialize, serialize
from resources.database import ArtifactDatabase, ArtifactRecord
from resources.object_store import ObjectStore

FORMAT_VERSION = 1


def object_key(
    asset_name: str,
    symbol: str,
    partition_date: dt.date,
    run_id: str,
    content_hash: str,
    extension: str,
) -> str:
    """``{asset}/{symbol}/{date}/{run_id}-{hash12}.{ext}``: one object per run and content."""
    day = partition_date.isoformat()
    return f"{asset_name}/{symbol}/{day}/{run_id}-{content_hash[:12]}.{extension}"


class ArtifactStore:
    """Every materialization becomes an object plus a row; loads read the newest row's object."""

    def __init__(self, database: ArtifactDatabase, object_store: ObjectStore) -> None:
        self.database = database
        self.object_store = object_store

    def write(
        self,
        obj: object,
        *,
        asset_name: str,
        symbol: str,
        partition_key: str,
        partition_date: dt.date,
        job_name: str,
        run_id: str,
        step_key: str,
    ) -> ArtifactRecord:
        """Store ``obj`` and return its row (with id). The object is written before the row."""
        value_symbol = getattr(obj, "symbol", symbol)
        if value_symbol != symbol:
            raise ValueError(
                f"{asset_name} returned a value for symbol {value_symbol} in partition "
                f"{partition_key} (symbol {symbol}): the asset must build its value for the "
                "partition's symbol"
            )
        serialized = serialize(obj)
        content_hash = hashlib.sha256(serialized.data).hexdigest()
        key = object_key(
            asset_name, symbol, partition_date, run_id, content_hash, serialized.extension
        )
        # A database whose schema is behind refuses the write before any object is stored.
        self.database.ensure_ready()
        # Object first: a crash in between leaves an unreferenced object, never a dangling row.
        uri = self.object_store.put(key, serialized.data, serialized.content_type)
        row_fields = dict(serialized.row_fields)
        metadata = {
            "content_type": serialized.content_type,
            "format_version": FORMAT_VERSION,
            "object_key": key,
            **row_fields.pop("artifact_metadata", {}),
        }
        now = dt.datetime.now(dt.UTC)
        record = ArtifactRecord(
            name=f"{asset_name}:{symbol}:{partition_date.isoformat()}",
            type=serialized.artifact_type,
            symbol=symbol,
            workflow_id=job_name,
            dag_id=job_name,
            execution_id=run_id,
            step_name=asset_name,
            task_id=step_key,
            partition_key=partition_key,
            partition_date=partition_date,
            # The previous system's users look charts up by image_path.
            image_path=uri if serialized.artifact_type == "chart" else None,
            artifact_metadata=metadata,
            object_uri=uri,
            content_hash=content_hash,
            size_bytes=len(serialized.data),
            created_at=now,
            updated_at=now,
            **row_fields,
        )
        artifact_id = self.database.insert(record)
        return record.model_copy(update={"id": artifact_id})

    def latest_record(self, asset_name: str, partition_key: str) -> ArtifactRecord:
        record = self.database.latest(asset_name, partition_key)
        if record is None:
            raise ArtifactNotFoundError(
                f"no artifact for asset {asset_name} partition {partition_key} in "
                f"{self.database.masked_url()}: materialize {asset_name} for that partition "
                "first (or check that DATABASE_URL points at the database it was written to)"
            )
        return record

    def load_latest(self, asset_name: str, partition_key: str) -> object:
        """The value of the newest artifact of ``asset_name`` for ``partition_key``."""
        return self.load(self.latest_record(asset_name, partition_key))

    def load(self, record: ArtifactRecord) -> object:
        return deserialize(record.type, self.read_payload(record), record)

    def read_payload(self, record: ArtifactRecord) -> bytes:
        """The stored bytes, checked against the row's size and sha256."""
        try:
            data = self.object_store.get(record.object_uri)
        except FileNotFoundError as exc:
            raise CorruptArtifactError.for_record(record, f"its object is missing ({exc})") from exc
        digest = hashlib.sha256(data).hexdigest()
        if digest != record.content_hash or len(data) != record.size_bytes:
            raise CorruptArtifactError.for_record(
                record,
                f"the stored object changed since it was written (sha256 {digest[:12]}..., "
                f"{len(data)} bytes; the row expects {record.content_hash[:12]}..., "
                f"{record.size_bytes} bytes)",
            )
        return data
