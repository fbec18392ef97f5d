"""Give every artifact row a unique write key, so a retried or replayed write inserts it once.

A write that timed out may still commit; the retry (or `trading-signals reconcile`, replaying
the local spool) then meets the key and keeps the first row instead of adding a duplicate.
Rows written before this revision keep a NULL key (NULLs never collide).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # batch mode: SQLite cannot add a constraint in place; on PostgreSQL it is a plain ALTER.
    with op.batch_alter_table("artifacts") as batch:
        batch.add_column(sa.Column("write_key", sa.String(64), nullable=True))
    op.create_index("ux_artifacts_write_key", "artifacts", ["write_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_artifacts_write_key", table_name="artifacts")
    with op.batch_alter_table("artifacts") as batch:
        batch.drop_column("write_key")
