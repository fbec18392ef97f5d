"""The local spool: where an artifact waits, durably, while a store is down.

Each entry is a folder ``pending/<write key>/`` holding the payload and the row (``entry.json``).
It is written in ``incoming/`` (files fsynced) and renamed into ``pending/`` in one step, so an
entry is either whole or absent. ``trading-signals reconcile`` replays entries into the stores
and removes them the same way (renamed out of ``pending/``, then deleted).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import dagster as dg
from pydantic import BaseModel, ConfigDict, ValidationError

from resources.database import ArtifactDatabase, ArtifactRecord
from resources.object_store import ObjectStore
from resources.settings_check import nearest_existing

PAYLOAD_FILE = "payload"
ENTRY_FILE = "entry.json"


class SpoolError(RuntimeError):
    """The spool itself cannot be written or read: the artifact has nowhere safe to go."""


class SpoolEntry(BaseModel):
    """An artifact that could not reach the stores: its row, where its object goes, and why."""

    model_config = ConfigDict(frozen=True)

    record: ArtifactRecord  # id is None; object_uri is where the object was meant to go
    object_key: str
    content_type: str
    reason: str
    object_stored: bool  # the object reached the object store before the database failed
    spooled_at: dt.datetime
    # The stores it was meant for (``store_target``: masked URL and bucket, never a password).
    # None: spooled by an earlier version, which did not record it.
    target: str | None = None

    def meant_for(self, target: str) -> bool:
        """Whether this entry belongs in the stores described by ``target``."""
        return self.target is None or self.target == target

    @property
    def write_key(self) -> str:
        assert self.record.write_key is not None
        return self.record.write_key

    def describe(self) -> str:
        r = self.record
        return f"{r.step_name} {r.partition_key} (run {r.execution_id}, {r.size_bytes} bytes)"


def store_target(database: ArtifactDatabase, object_store: ObjectStore) -> str:
    """Which stores an artifact is meant for, in words a person can act on (no password)."""
    return f"database {database.masked_url()}, object store {object_store.describe()}"


class ArtifactSpool(dg.ConfigurableResource):
    """A folder on local disk; only this machine's runs and `trading-signals reconcile` use it."""

    directory: str = "data/spool"

    def _root(self) -> Path:
        return Path(self.directory).resolve()

    def _pending(self) -> Path:
        return self._root() / "pending"

    def describe(self) -> str:
        return f"local spool {self._root()}"

    def put(self, entry: SpoolEntry, payload: bytes) -> Path:
        """Store ``entry`` and its payload atomically; returns the entry's folder.

        Spooling the same write twice (a retried step) keeps the first entry.
        """
        if hashlib.sha256(payload).hexdigest() != entry.record.content_hash:
            raise SpoolError(
                f"refusing to spool {entry.describe()}: the payload does not match its hash"
            )
        target = self._pending() / entry.write_key
        if target.is_dir():
            return target
        incoming = self._root() / "incoming"
        staging: Path | None = None
        try:
            incoming.mkdir(parents=True, exist_ok=True)
            self._pending().mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=incoming, prefix=f"{entry.write_key[:16]}-"))
            _write_synced(staging / PAYLOAD_FILE, payload)
            _write_synced(staging / ENTRY_FILE, entry.model_dump_json(indent=2).encode())
            try:
                os.rename(staging, target)
            except OSError:
                if not target.is_dir():
                    raise
                shutil.rmtree(staging)  # another attempt of the same write got there first
            _sync_directory(self._pending())
        except OSError as exc:
            if staging is not None and staging.exists():
                # Never a half-written entry: the staging folder goes, the failure is raised.
                shutil.rmtree(staging, ignore_errors=True)
            raise SpoolError(
                f"cannot spool {entry.describe()} to {self.describe()} ({type(exc).__name__}: "
                f"{exc}; {_free_space(self._root())}); the artifact could be stored neither in "
                "the stores nor on local disk: free disk space or fix SPOOL_DIR's permissions, "
                "then re-materialize"
            ) from exc
        return target

    def entries(self) -> list[SpoolEntry]:
        """Every pending entry, oldest first. A damaged entry raises SpoolError naming it."""
        folder = self._pending()
        if not folder.is_dir():
            return []
        found = [self.read(path.name) for path in folder.iterdir() if path.is_dir()]
        return sorted(found, key=lambda e: (e.spooled_at, e.write_key))

    def pending_for(self, partition_key: str, target: str | None = None) -> list[SpoolEntry]:
        """The partition's entries; with ``target``, only those meant for those stores (see
        ``elsewhere_for`` for the others)."""
        return [
            e for e in self.entries()
            if e.record.partition_key == partition_key and (target is None or e.meant_for(target))
        ]

    def elsewhere_for(self, partition_key: str, target: str) -> list[SpoolEntry]:
        """The partition's entries meant for other stores than ``target`` (another config)."""
        return [
            e for e in self.entries()
            if e.record.partition_key == partition_key and not e.meant_for(target)
        ]

    def write_keys(self) -> list[str]:
        """The write keys of the pending entries, sorted (cheap: no entry is read)."""
        folder = self._pending()
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    def count(self) -> int:
        return len(self.write_keys())

    def read(self, write_key: str) -> SpoolEntry:
        path = self._pending() / write_key / ENTRY_FILE
        try:
            return SpoolEntry.model_validate_json(path.read_bytes())
        except (OSError, ValidationError) as exc:
            raise SpoolError(
                f"spool entry {path.parent} cannot be read ({type(exc).__name__}): move it out of "
                f"{self._pending()} and inspect it by hand; nothing else in the spool is affected"
            ) from exc

    def payload(self, entry: SpoolEntry) -> bytes:
        """The entry's payload, checked against the row's hash."""
        path = self._pending() / entry.write_key / PAYLOAD_FILE
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != entry.record.content_hash:
            raise SpoolError(
                f"spool entry {path.parent} is damaged: its payload's sha256 is {digest[:12]}..., "
                f"the row expects {entry.record.content_hash[:12]}...; it was left in place"
            )
        return data

    def remove(self, entry: SpoolEntry) -> None:
        """Drop an entry once it is in both stores (renamed out of pending/ first: atomic)."""
        source = self._pending() / entry.write_key
        done = self._root() / "done"
        done.mkdir(parents=True, exist_ok=True)
        target = done / f"{entry.write_key}-{os.getpid()}"
        os.rename(source, target)
        shutil.rmtree(target)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _sync_directory(path: Path) -> None:
    # The rename is durable only once the directory itself is on disk.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _free_space(folder: Path) -> str:
    """How much room the disk under ``folder`` has left, for an error message."""
    probe = nearest_existing(folder)
    try:
        free = shutil.disk_usage(probe).free
    except OSError as exc:
        return f"free space unknown: {exc.strerror or exc}"
    return f"{free / 1e6:,.1f} MB free on {probe}"
