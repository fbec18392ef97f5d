"""The paper simulator's tables: orders, fills and closing marks.

Also adopts a simulator database made before its schema had migrations: the tables are there
(made by hand at the time), without the columns added since; they get those columns and the
database its revision. A new database gets the tables whole.

Revision ID: sim0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "sim0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Added to the hand-made tables before migrations existed: (table, column).
_ADOPTED_COLUMNS = (
    ("paper_orders", sa.Column("exit_quantity", sa.Float)),
    ("paper_fills", sa.Column("commission", sa.Float, nullable=False, server_default="0")),
    ("paper_fills", sa.Column("slippage", sa.Float, nullable=False, server_default="0")),
)


def _tables() -> list[tuple[str, list[sa.SchemaItem]]]:
    return [
        ("paper_orders", [
            sa.Column("order_ref", sa.String(64), primary_key=True),
            sa.Column("symbol", sa.String(16), nullable=False),
            sa.Column("trade_date", sa.Date, nullable=False),
            sa.Column("side", sa.String(4), nullable=False),
            sa.Column("quantity", sa.Float, nullable=False),
            sa.Column("limit_price", sa.Float, nullable=False),
            sa.Column("stop_loss", sa.Float),
            sa.Column("take_profit", sa.Float),
            sa.Column("bracket", sa.Boolean, nullable=False),
            sa.Column("exit_quantity", sa.Float),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("processed_through", sa.Date, nullable=False),
            sa.UniqueConstraint("symbol", "trade_date", name="one_order_per_symbol_day"),
        ]),
        ("paper_fills", [
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("order_ref", sa.String(64), nullable=False),
            sa.Column("leg", sa.String(16), nullable=False),
            sa.Column("symbol", sa.String(16), nullable=False),
            sa.Column("side", sa.String(4), nullable=False),
            sa.Column("quantity", sa.Float, nullable=False),
            sa.Column("price", sa.Float, nullable=False),
            sa.Column("fill_date", sa.Date, nullable=False),
            sa.Column("filled_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("commission", sa.Float, nullable=False, server_default=sa.text("0")),
            sa.Column("slippage", sa.Float, nullable=False, server_default=sa.text("0")),
            sa.UniqueConstraint("order_ref", "leg", name="one_fill_per_leg"),
        ]),
        ("paper_marks", [
            sa.Column("symbol", sa.String(16), primary_key=True),
            sa.Column("mark_date", sa.Date, primary_key=True),
            sa.Column("close", sa.Float, nullable=False),
        ]),
    ]


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for name, items in _tables():
        if not inspector.has_table(name):
            op.create_table(name, *items)
    # A table made before migrations existed lacks the columns added since.
    for table, column in _ADOPTED_COLUMNS:
        if column.name not in {c["name"] for c in inspector.get_columns(table)}:
            with op.batch_alter_table(table) as batch:
                batch.add_column(column)


def downgrade() -> None:
    for table in ("paper_marks", "paper_fills", "paper_orders"):
        op.drop_table(table)
