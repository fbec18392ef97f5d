"""A database at revision 0001 holding a row, as the previous release left it."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import command

from sql.engine import create_database_engine
from sql.migrate import alembic_config

OLD_ROW = {
    "name": "order:TSLA:2025-06-02", "type": "order", "symbol": "TSLA",
    "partition_key": "2025-06-02|TSLA", "partition_date": dt.date(2025, 6, 2),
    "object_uri": "file:///old/order.json", "content_hash": "a" * 64, "size_bytes": 10,
    "created_at": dt.datetime(2025, 6, 2, tzinfo=dt.UTC),
    "updated_at": dt.datetime(2025, 6, 2, tzinfo=dt.UTC),
}


def make_release_0001_database(url: str) -> None:
    engine = create_database_engine(url)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "0001")
        columns = ", ".join(OLD_ROW)
        values = ", ".join(f":{name}" for name in OLD_ROW)
        with engine.begin() as connection:
            connection.execute(sa.text(f"INSERT INTO artifacts ({columns}) VALUES ({values})"),
                               OLD_ROW)
    finally:
        engine.dispose()
