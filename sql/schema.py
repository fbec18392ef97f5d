"""The ``artifacts`` table (SPEC.md): one row per materialization, as the application sees it.

Migrations in ``sql/migrations`` create this schema; a test checks the two never drift apart.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

ARTIFACT_TYPES: tuple[str, ...] = (
    "market_data", "chart", "llm", "signal", "order", "portfolio",
    # The evaluation group: a signal's outcome, the scorecard over all of them, its plots.
    "outcome", "scorecard", "plot",
)
_TYPE_CHECK = "type IN ({})".format(", ".join(f"'{t}'" for t in ARTIFACT_TYPES))


def json_type() -> sa.types.TypeEngine[object]:
    """JSON everywhere, JSONB on PostgreSQL so the payload fields can be indexed and queried."""
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


metadata = sa.MetaData()

artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("symbol", sa.String(32)),
    # MLflow run and experiment.
    sa.Column("run_id", sa.String(64)),
    sa.Column("experiment_id", sa.String(64)),
    # workflow_id = dag_id = job name, execution_id = Dagster run id, step_name = asset key,
    # task_id = step key: the names the previous system's users query by.
    sa.Column("workflow_id", sa.String(255)),
    sa.Column("execution_id", sa.String(64)),
    sa.Column("step_name", sa.String(255)),
    sa.Column("dag_id", sa.String(255)),
    sa.Column("task_id", sa.String(255)),
    sa.Column("partition_key", sa.String(255)),
    sa.Column("partition_date", sa.Date),
    sa.Column("prompt", sa.Text),
    sa.Column("response", sa.Text),
    sa.Column("prompt_length", sa.Integer),
    sa.Column("response_length", sa.Integer),
    sa.Column("model_name", sa.String(255)),
    sa.Column("image_path", sa.String(2048)),
    sa.Column("chart_type", sa.String(32)),
    sa.Column("chart_data", json_type()),
    sa.Column("action", sa.String(16)),
    sa.Column("confidence", sa.Float),
    sa.Column("signal_data", json_type()),
    sa.Column("artifact_metadata", json_type()),
    # NOT NULL: a row always points at its stored payload.
    sa.Column("object_uri", sa.String(2048), nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # sha256 of (run, asset, partition, content): a retried or replayed write inserts once.
    sa.Column("write_key", sa.String(64)),
    sa.CheckConstraint(_TYPE_CHECK, name="ck_artifacts_type"),
    sa.Index("ix_artifacts_workflow_id", "workflow_id"),
    sa.Index("ix_artifacts_execution_id", "execution_id"),
    sa.Index("ix_artifacts_workflow_id_execution_id", "workflow_id", "execution_id"),
    sa.Index("ix_artifacts_dag_id", "dag_id"),
    sa.Index("ix_artifacts_step_name", "step_name"),
    sa.Index("ix_artifacts_type", "type"),
    sa.Index("ix_artifacts_symbol", "symbol"),
    sa.Index("ix_artifacts_created_at", "created_at"),
    sa.Index("ix_artifacts_symbol_partition_date", "symbol", "partition_date"),
    # Serves "latest artifact of this asset and partition" (ORDER BY id DESC LIMIT 1).
    sa.Index("ix_artifacts_step_name_partition_key_id", "step_name", "partition_key", "id"),
    sa.Index("ux_artifacts_write_key", "write_key", unique=True),
    # The artifact browser's pages: newest first after one filter, paged by (created_at, id).
    sa.Index("ix_artifacts_created_at_id", "created_at", "id"),
    sa.Index("ix_artifacts_type_created_at_id", "type", "created_at", "id"),
    sa.Index("ix_artifacts_symbol_created_at_id", "symbol", "created_at", "id"),
    sa.Index("ix_artifacts_partition_date_created_at_id", "partition_date", "created_at", "id"),
)

# One row per check result on one artifact: append-only, like the artifacts table. A consumer
# loads an artifact only when the latest result of each of its blocking checks passed. Keyed by
# the artifact's write key (known even while the artifact waits in the spool), or by its id for
# rows written before write keys existed.
artifact_checks = sa.Table(
    "artifact_checks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("write_key", sa.String(64)),
    sa.Column("artifact_id", sa.Integer),
    sa.Column("asset", sa.String(255), nullable=False),
    sa.Column("partition_key", sa.String(255)),
    sa.Column("check_name", sa.String(255), nullable=False),
    sa.Column("blocking", sa.Boolean, nullable=False),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("description", sa.Text),
    # The Dagster run that ran the check.
    sa.Column("execution_id", sa.String(64)),
    sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_artifact_checks_write_key", "write_key", "id"),
    sa.Index("ix_artifact_checks_artifact_id", "artifact_id", "id"),
)
