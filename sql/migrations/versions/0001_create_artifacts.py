"""Create the artifacts table with its type check and query indexes.

Revision ID: 0001
Revises:
Create Date: 2025-06-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A frozen copy of the columns: later edits to sql/schema.py must not rewrite history.
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

_INDEXES: dict[str, list[str]] = {
    "ix_artifacts_workflow_id": ["workflow_id"],
    "ix_artifacts_execution_id": ["execution_id"],
    "ix_artifacts_workflow_id_execution_id": ["workflow_id", "execution_id"],
    "ix_artifacts_dag_id": ["dag_id"],
    "ix_artifacts_step_name": ["step_name"],
    "ix_artifacts_type": ["type"],
    "ix_artifacts_symbol": ["symbol"],
    "ix_artifacts_created_at": ["created_at"],
    "ix_artifacts_symbol_partition_date": ["symbol", "partition_date"],
    "ix_artifacts_step_name_partition_key_id": ["step_name", "partition_key", "id"],
}


def upgrade() -> None:
    op.create_table(
        "artifacts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(32)),
        sa.Column("run_id", sa.String(64)),
        sa.Column("experiment_id", sa.String(64)),
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
        sa.Column("chart_data", _JSON),
        sa.Column("action", sa.String(16)),
        sa.Column("confidence", sa.Float),
        sa.Column("signal_data", _JSON),
        sa.Column("artifact_metadata", _JSON),
        sa.Column("object_uri", sa.String(2048), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "type IN ('market_data', 'chart', 'llm', 'signal', 'order', 'portfolio')",
            name="ck_artifacts_type",
        ),
    )
    for name, columns in _INDEXES.items():
        op.create_index(name, "artifacts", columns)


def downgrade() -> None:
    for name in reversed(_INDEXES):
        op.drop_index(name, table_name="artifacts")
    op.drop_table("artifacts")
