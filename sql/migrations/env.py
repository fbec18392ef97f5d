"""Alembic environment for the artifacts schema, driven by ``sql/migrate.py`` (no alembic.ini).

``sql.migrate`` passes an open connection, already inside the transaction that holds the
migration lock, in ``config.attributes["connection"]``.
"""

from __future__ import annotations

from alembic import context

from sql.migrate import run_online
from sql.schema import metadata

run_online(context, metadata)
