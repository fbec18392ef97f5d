"""Alembic environment for the paper simulator's schema, driven by ``sql/simulator.py``."""

from __future__ import annotations

from alembic import context

from sql.migrate import run_online
from sql.simulator import VERSION_TABLE, metadata

run_online(context, metadata, version_table=VERSION_TABLE)
