"""The one resource that owns the artifact store: database, object store, spool, write policy.

Every asset, check, job, sensor and command that reads or writes artifacts gets its
``ArtifactStore`` here, so all of them honour ``STORAGE_WRITE_ATTEMPTS`` and
``STORAGE_WRITE_TIMEOUT_SECONDS`` alike (the IO manager, the LLM cache, the reconcile job).
"""

# No `from __future__ import annotations`: Dagster must see ResourceDependency[...] unquoted.
import dagster as dg

from io_managers.artifact_store import ArtifactStore
from io_managers.resilience import Log, WritePolicy
from io_managers.spool import ArtifactSpool
from resources.database import ArtifactDatabase
from resources.object_store import ObjectStore


class Artifacts(dg.ConfigurableResource):
    """The artifacts table and the object store as one store, with how hard a write tries."""

    database: dg.ResourceDependency[ArtifactDatabase]
    object_store: dg.ResourceDependency[ObjectStore]
    # Where an artifact waits when a store stays down through the retries.
    spool: dg.ResourceDependency[ArtifactSpool]
    # WritePolicy's defaults: stated once, there.
    write_attempts: int = WritePolicy.attempts
    retry_base_seconds: float = WritePolicy.base_delay_seconds
    retry_max_seconds: float = WritePolicy.max_delay_seconds
    write_timeout_seconds: float = WritePolicy.timeout_seconds

    def write_policy(self) -> WritePolicy:
        return WritePolicy(
            attempts=self.write_attempts,
            base_delay_seconds=self.retry_base_seconds,
            max_delay_seconds=self.retry_max_seconds,
            timeout_seconds=self.write_timeout_seconds,
        )

    def store(self, log: Log | None = None) -> ArtifactStore:
        """The store, with the configured write policy; ``log`` gets failed attempts."""
        return ArtifactStore(self.database, self.object_store, policy=self.write_policy(), log=log)
