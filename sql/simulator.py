"""The paper simulator's own database (``paper_broker.db``): its tables and its migrations.

Like the artifacts schema (``sql/schema.py``, ``sql/migrations``), the simulator's tables are
created and changed only by migrations, in ``sql/simulator_migrations``, which keep their
revision in their own table (``paper_simulator_version``). ``upgrade_simulator`` is run by the
simulator when it opens its database; processes starting together migrate it once.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

MIGRATIONS_DIR = Path(__file__).resolve().parent / "simulator_migrations"
VERSION_TABLE = "paper_simulator_version"

metadata = sa.MetaData()
orders = sa.Table(
    "paper_orders",
    metadata,
    sa.Column("order_ref", sa.String(64), primary_key=True),
    sa.Column("symbol", sa.String(16), nullable=False),
    sa.Column("trade_date", sa.Date, nullable=False),
    sa.Column("side", sa.String(4), nullable=False),
    sa.Column("quantity", sa.Float, nullable=False),
    sa.Column("limit_price", sa.Float, nullable=False),
    sa.Column("stop_loss", sa.Float),
    sa.Column("take_profit", sa.Float),
    sa.Column("bracket", sa.Boolean, nullable=False),
    # Shares the exits trade once the entry filled; NULL: the order's quantity. A later order
    # that reduces the position shrinks it.
    sa.Column("exit_quantity", sa.Float),
    # working -> filled (bracket legs working) -> closed (an exit filled) or exits_cancelled (a
    # later order closed the position first)
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("processed_through", sa.Date, nullable=False),
    sa.UniqueConstraint("symbol", "trade_date", name="one_order_per_symbol_day"),
)
fills = sa.Table(
    "paper_fills",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("order_ref", sa.String(64), nullable=False),
    sa.Column("leg", sa.String(16), nullable=False),
    sa.Column("symbol", sa.String(16), nullable=False),
    sa.Column("side", sa.String(4), nullable=False),
    sa.Column("quantity", sa.Float, nullable=False),
    sa.Column("price", sa.Float, nullable=False),
    sa.Column("fill_date", sa.Date, nullable=False),
    sa.Column("filled_at", sa.DateTime(timezone=True), nullable=False),
    # USD: the fill's commission and its slippage (|price - price before slippage| x quantity).
    sa.Column("commission", sa.Float, nullable=False, server_default=sa.text("0")),
    sa.Column("slippage", sa.Float, nullable=False, server_default=sa.text("0")),
    sa.UniqueConstraint("order_ref", "leg", name="one_fill_per_leg"),
)
marks = sa.Table(
    "paper_marks",
    metadata,
    sa.Column("symbol", sa.String(16), primary_key=True),
    sa.Column("mark_date", sa.Date, primary_key=True),
    sa.Column("close", sa.Float, nullable=False),
)


def upgrade_simulator(url: str) -> tuple[str | None, str]:
    """Migrate the simulator database at ``url`` to its newest schema; (before, after)."""
    from sql.migrate import upgrade_tree

    return upgrade_tree(url, MIGRATIONS_DIR, VERSION_TABLE)
