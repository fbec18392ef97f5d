"""Admit the evaluation group's artifact types: 'outcome', 'scorecard' and 'plot'.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BEFORE = ("market_data", "chart", "llm", "signal", "order", "portfolio")
_AFTER = (*_BEFORE, "outcome", "scorecard", "plot")


def _check(types: tuple[str, ...]) -> str:
    return "type IN ({})".format(", ".join(f"'{t}'" for t in types))


def _replace_check(types: tuple[str, ...]) -> None:
    # batch mode: SQLite cannot alter a constraint in place (it copies the table); on PostgreSQL
    # it is a plain DROP CONSTRAINT / ADD CONSTRAINT.
    with op.batch_alter_table("artifacts") as batch:
        batch.drop_constraint("ck_artifacts_type", type_="check")
        batch.create_check_constraint("ck_artifacts_type", _check(types))


def upgrade() -> None:
    _replace_check(_AFTER)


def downgrade() -> None:
    op.execute("DELETE FROM artifacts WHERE type IN ('outcome', 'scorecard', 'plot')")
    _replace_check(_BEFORE)
