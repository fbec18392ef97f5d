"""Record each asset check's result on the artifact it judged (``artifact_checks``).

A consumer step loads an upstream artifact only when the latest result of each of its blocking
checks passed, however the step is launched.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "artifact_checks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("write_key", sa.String(64)),
        sa.Column("artifact_id", sa.Integer),
        sa.Column("asset", sa.String(255), nullable=False),
        sa.Column("partition_key", sa.String(255)),
        sa.Column("check_name", sa.String(255), nullable=False),
        sa.Column("blocking", sa.Boolean, nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("execution_id", sa.String(64)),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_artifact_checks_write_key", "artifact_checks", ["write_key", "id"])
    op.create_index("ix_artifact_checks_artifact_id", "artifact_checks", ["artifact_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_artifact_checks_artifact_id", table_name="artifact_checks")
    op.drop_index("ix_artifact_checks_write_key", table_name="artifact_checks")
    op.drop_table("artifact_checks")
