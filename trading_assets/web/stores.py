"""The stores the browser reads, configured exactly as the pipeline's: the ``artifacts`` resource
of ``resources_from_environment``, resolved as the CLI resolves it.

SQLite and the local object folder by default; PostgreSQL with DATABASE_URL, S3 / MinIO with
MINIO_ENDPOINT. Every payload is read through ``ArtifactStore.read_payload`` (size and sha256
checked against the row).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg

from io_managers.artifact_store import ArtifactStore
from io_managers.errors import CorruptArtifactError
from resources.database import ArtifactDatabase, ArtifactRecord
from resources.object_store import ObjectStore
from sql.engine import url_secrets
from trading_assets.environment import resources_from_environment
from trading_assets.web.errors import ArtifactUnreadable, store_guard
from trading_assets.web.queries import ArtifactQueries, Row

OBJECT_STORE_FIX = (
    "check that the object store is running and MINIO_ENDPOINT / MINIO_ACCESS_KEY / "
    "MINIO_SECRET_KEY (or the data folder) are right"
)


@dataclass
class Stores:
    database: ArtifactDatabase
    object_store: ObjectStore
    queries: ArtifactQueries
    artifacts: ArtifactStore

    def describe(self) -> str:
        return f"{self.queries.describe()}, object store {self.object_store.describe()}"

    def secrets(self) -> set[str]:
        """Every secret the configuration holds, to scrub from anything shown (belt and braces)."""
        found = url_secrets(self.database.url)
        s3 = getattr(self.object_store, "s3", None)
        for name in ("aws_secret_access_key", "aws_session_token"):
            value = getattr(s3, name, None)
            if isinstance(value, str) and value:
                found.add(value)
        return {s for s in found if len(s) >= 4}

    def payload(self, row: Row) -> bytes:
        """The row's stored bytes, verified; StoreDown if the object store does not answer."""
        record = ArtifactRecord.model_validate(row)
        with store_guard(f"object store {self.object_store.describe()}", OBJECT_STORE_FIX):
            try:
                return self.artifacts.read_payload(record)
            except CorruptArtifactError as exc:
                raise ArtifactUnreadable(str(exc)) from exc
            except ValueError as exc:  # a URI of another store (s3:// with the local folder)
                raise ArtifactUnreadable(f"artifact #{record.id}: {exc}") from exc

    def value(self, row: Row) -> object:
        """The row's payload as its typed value (ArtifactStore.load, hash checked)."""
        record = ArtifactRecord.model_validate(row)
        with store_guard(f"object store {self.object_store.describe()}", OBJECT_STORE_FIX):
            try:
                return self.artifacts.load(record)
            except CorruptArtifactError as exc:
                raise ArtifactUnreadable(str(exc)) from exc
            except ValueError as exc:  # a URI of another store (s3:// with the local folder)
                raise ArtifactUnreadable(f"artifact #{record.id}: {exc}") from exc

    def close(self) -> None:
        self.database.dispose()


def open_stores(env: Mapping[str, str] | None = None) -> Stores:
    """The configured database and object store, EnvVar fields resolved (as the CLI does).

    SettingError (one line per problem) when the configuration cannot work.
    """
    resources: dict[str, Any] = resources_from_environment(env)
    # Left at once, on this thread: build_resources runs on an ephemeral Dagster instance whose
    # in-memory SQLite must be closed where it was opened (the app serves from other threads).
    # The resolved resources stay usable: the database reopens its engine on first use.
    with dg.build_resources({"artifacts": resources["artifacts"]}) as built:
        artifacts = built.artifacts
    return Stores(
        database=artifacts.database,
        object_store=artifacts.object_store,
        queries=ArtifactQueries(artifacts.database),
        artifacts=artifacts.store(),
    )
