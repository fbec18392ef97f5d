"""Write and read artifacts (object payload + ``artifacts`` row) without needing Dagster.

The IO manager, the CLI and asset checks all go through this one class.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from io_managers.errors import ArtifactNotFoundError, CorruptArtifactError
from io_managers.resilience import (
    Log,
    WritePolicy,
    call_with_timeout,
    first_line,
    is_transient,
    with_retries,
)
from io_managers.serializers import deserialize, serialize
from io_managers.spool import ArtifactSpool, SpoolEntry, store_target
from io_managers.validation import validate_artifact
from resources.database import ArtifactDatabase, ArtifactRecord
from resources.object_store import ObjectStore

FORMAT_VERSION = 1
# Successful writes at DEBUG (a line per artifact in the event log would slow every run down);
# failed attempts and spooling go to the run's log as warnings.
_LOG = logging.getLogger("trading_signals.storage")


ALL_SYMBOLS = "all"  # the object-key folder of an artifact over every symbol (the scorecard)
IMAGE_TYPES = ("chart", "plot")


def object_key(
    asset_name: str,
    symbol: str | None,
    partition_date: dt.date | None,
    run_id: str,
    content_hash: str,
    extension: str,
) -> str:
    """``{asset}/{symbol}/{date}/{run_id}-{hash12}.{ext}``: one object per run and content.

    An artifact over every symbol goes under ``all/``; one without a day under ``undated/``.
    """
    day = partition_date.isoformat() if partition_date else "undated"
    folder = symbol or ALL_SYMBOLS
    return f"{asset_name}/{folder}/{day}/{run_id}-{content_hash[:12]}.{extension}"


def write_key(run_id: str, asset_name: str, partition_key: str | None, content_hash: str) -> str:
    """The row's unique key: one write of this content, by this run, for this asset-partition."""
    text = f"{run_id}|{asset_name}|{partition_key or ''}|{content_hash}"
    return hashlib.sha256(text.encode()).hexdigest()


class StoreUnavailableError(RuntimeError):
    """A store stayed down (or slow) through every retry; the artifact is not in the stores."""

    def __init__(self, message: str, *, object_stored: bool) -> None:
        super().__init__(message)
        self.object_stored = object_stored


@dataclass(frozen=True)
class PreparedArtifact:
    """A validated row and its payload, ready for the stores (or the spool)."""

    record: ArtifactRecord
    payload: bytes
    object_key: str
    content_type: str

    def describe(self) -> str:
        r = self.record
        return f"artifact write ({r.step_name}, partition {r.partition_key}, run {r.execution_id})"


@dataclass(frozen=True)
class WriteResult:
    """Where a materialization went: the stores (``record.id`` set) or the local spool."""

    record: ArtifactRecord
    spooled: SpoolEntry | None = None
    spool_path: Path | None = None


class ArtifactStore:
    """Every materialization becomes an object plus a row; loads read the newest row's object."""

    def __init__(
        self,
        database: ArtifactDatabase,
        object_store: ObjectStore,
        *,
        policy: WritePolicy | None = None,
        log: Log | None = None,
    ) -> None:
        self.database = database
        self.object_store = object_store
        self.policy = policy or WritePolicy()
        self.log = log

    def prepare(
        self,
        obj: object,
        *,
        asset_name: str,
        symbol: str | None,
        partition_key: str | None,
        partition_date: dt.date | None,
        job_name: str,
        run_id: str,
        step_key: str,
    ) -> PreparedArtifact:
        """Serialize and validate ``obj`` as a row and a payload; nothing is written yet.

        ``symbol`` and ``partition_key`` are None for an asset over every symbol and day.
        """
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
        uri = self.object_store.uri_for(key)
        row_fields = dict(serialized.row_fields)
        metadata = {
            "content_type": serialized.content_type,
            "format_version": FORMAT_VERSION,
            "object_key": key,
            **row_fields.pop("artifact_metadata", {}),
        }
        now = dt.datetime.now(dt.UTC)
        record = ArtifactRecord(
            name=(
                f"{asset_name}:{symbol or ALL_SYMBOLS}:"
                f"{partition_date.isoformat() if partition_date else 'undated'}"
            ),
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
            image_path=uri if serialized.artifact_type in IMAGE_TYPES else None,
            artifact_metadata=metadata,
            object_uri=uri,
            content_hash=content_hash,
            size_bytes=len(serialized.data),
            created_at=now,
            updated_at=now,
            write_key=write_key(run_id, asset_name, partition_key, content_hash),
            **row_fields,
        )
        validate_artifact(record, serialized.data)
        return PreparedArtifact(record, serialized.data, key, serialized.content_type)

    def write(self, obj: object, **context: Any) -> ArtifactRecord:
        """Store ``obj`` and return its row (with id); StoreUnavailableError if a store is down."""
        return self.save(self.prepare(obj, **context))

    def write_or_spool(
        self, obj: object, *, spool: ArtifactSpool | None, **context: Any
    ) -> WriteResult:
        """Store ``obj``; if a store stays down through the retries, keep it in ``spool``.

        Without a spool the StoreUnavailableError propagates: the step fails, nothing is kept.
        """
        prepared = self.prepare(obj, **context)
        try:
            return WriteResult(self.save(prepared))
        except StoreUnavailableError as exc:
            if spool is None:
                raise
            entry = SpoolEntry(
                record=prepared.record,
                object_key=prepared.object_key,
                content_type=prepared.content_type,
                reason=str(exc),
                object_stored=exc.object_stored,
                spooled_at=dt.datetime.now(dt.UTC),
                target=store_target(self.database, self.object_store),
            )
            path = spool.put(entry, prepared.payload)
            if self.log is not None:
                self.log.warning(
                    f"{prepared.describe()} went to {spool.describe()} ({path.name}): {exc}. "
                    "Run `trading-signals reconcile` once the stores are back"
                )
            return WriteResult(prepared.record, spooled=entry, spool_path=path)

    def save(self, prepared: PreparedArtifact) -> ArtifactRecord:
        """Put the object, then insert the row (each retried); returns the row with its id."""
        return self.save_once(prepared)[0]

    def save_once(self, prepared: PreparedArtifact) -> tuple[ArtifactRecord, bool]:
        """(the row with its id, whether this call inserted it).

        The object goes first, so there is never a row without its object. The row is inserted
        once whatever happens (its write key is unique), so this is safe to repeat.
        """
        what = prepared.describe()
        # A database whose schema is behind refuses the write before any object is stored.
        database_error = None
        if not self.database.schema_checked():  # once per instance, not on every write
            database_error = self._attempt(
                self.database.ensure_ready, what, self._database_target()
            )
        try:
            uri = with_retries(
                lambda: self.object_store.put(
                    prepared.object_key, prepared.payload, prepared.content_type
                ),
                what=what, where=self.object_store.describe(), policy=self.policy, log=self.log,
            )
        except Exception as exc:
            if not is_transient(exc):
                raise
            down = [f"object store {self.object_store.describe()}: {first_line(exc)}"]
            if database_error is not None:
                down.append(f"database {self._database_target()}: {first_line(database_error)}")
            raise StoreUnavailableError(_down_message(down), object_stored=False) from exc
        record = prepared.record
        if uri != record.object_uri:
            record = record.model_copy(
                update={
                    "object_uri": uri,
                    "image_path": uri if record.type in IMAGE_TYPES else None,
                }
            )
        if database_error is not None:
            down = [f"database {self._database_target()}: {first_line(database_error)}"]
            raise StoreUnavailableError(_down_message(down), object_stored=True) from database_error
        try:
            artifact_id, created = with_retries(
                lambda: self.database.insert_once(record),
                what=what, where=self._database_target(), policy=self.policy, log=self.log,
            )
        except Exception as exc:
            if not is_transient(exc):
                raise
            down = [f"database {self._database_target()}: {first_line(exc)}"]
            raise StoreUnavailableError(_down_message(down), object_stored=True) from exc
        _LOG.debug(
            "%s stored: object %s, row #%s in %s%s", what, uri, artifact_id,
            self._database_target(), "" if created else " (already there)",
        )
        return record.model_copy(update={"id": artifact_id}), created

    def unanswered(self, timeout_seconds: float = 10.0) -> str | None:
        """Which store does not answer right now, each with why (None: both answer).

        A store that is down or hangs past ``timeout_seconds`` counts; anything else raises.
        """
        down = []
        checks = (
            (f"database {self.database.masked_url()}", self.database.ping),
            (f"object store {self.object_store.describe()}", self.object_store.ping),
        )
        for name, ping in checks:
            try:
                call_with_timeout(ping, timeout_seconds, f"ping the {name}")
            except Exception as exc:
                if not is_transient(exc):
                    raise
                down.append(f"{name} ({type(exc).__name__}: {first_line(exc)})")
        return "; ".join(down) or None

    def target(self) -> str:
        """Which stores this is (``store_target``): what a spool entry says it was meant for."""
        return store_target(self.database, self.object_store)

    def _database_target(self) -> str:
        return f"artifacts table at {self.database.masked_url()}"

    def _attempt(self, fn: Callable[[], None], what: str, where: str) -> Exception | None:
        """None if ``fn`` succeeded within the retries; the transient error if it never did."""
        try:
            with_retries(fn, what=what, where=where, policy=self.policy, log=self.log)
        except Exception as exc:
            if not is_transient(exc):
                raise
            return exc
        return None

    def latest_record(self, asset_name: str, partition_key: str | None) -> ArtifactRecord:
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



def _down_message(down: list[str]) -> str:
    return "the artifact could not be stored after retries: " + "; ".join(down)
