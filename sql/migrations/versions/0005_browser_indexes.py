"""Indexes for the artifact browser: newest first, filtered by type, symbol or day, paged by
(created_at, id).

Each one serves ``ORDER BY created_at DESC, id DESC`` after its equality filter, and the keyset
condition ``(created_at, id) < (:created_at, :id)`` as an index range, so a page and the COUNT
with the same filters stay fast on a table of millions of rows (trading_assets/web/queries.py).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES: dict[str, list[str]] = {
    "ix_artifacts_created_at_id": ["created_at", "id"],
    "ix_artifacts_type_created_at_id": ["type", "created_at", "id"],
    "ix_artifacts_symbol_created_at_id": ["symbol", "created_at", "id"],
    "ix_artifacts_partition_date_created_at_id": ["partition_date", "created_at", "id"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "artifacts", columns)


def downgrade() -> None:
    for name in reversed(INDEXES):
        op.drop_index(name, table_name="artifacts")
