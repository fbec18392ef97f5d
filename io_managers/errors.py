"""Errors raised when a stored artifact cannot be found or read back, each naming the fix."""

from __future__ import annotations

from resources.database import ArtifactRecord


class CorruptArtifactError(RuntimeError):
    """A stored artifact whose payload is missing, altered or unreadable."""

    @classmethod
    def for_record(cls, record: ArtifactRecord, problem: str) -> CorruptArtifactError:
        asset = record.step_name or record.name
        partition = record.partition_key or "(unpartitioned)"
        return cls(
            f"artifact #{record.id} ({asset}, partition {partition}) at {record.object_uri} "
            f"cannot be used: {problem}. Fix: re-materialize {asset} for partition {partition} "
            "(Dagster UI: Materialize selected partition; or `trading-signals run --date "
            f"{record.partition_date or 'YYYY-MM-DD'} --symbols {record.symbol or 'SYMBOL'}`); "
            "loads always use the newest artifact, so the broken one is then skipped"
        )


class ArtifactNotFoundError(LookupError):
    """No artifact was ever stored for an asset and partition."""
