"""Alembic environment for the artifacts schema, driven by ``sql/migrate.py`` (no alembic.ini).

``sql.migrate`` passes an open connection, already inside the transaction that holds the
migration lock, in ``config.attributes["connection"]``.
"""

from __future__ import annotations

from alembic import context

from sql.schema import metadata

config = context.config


def _run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "the artifacts migrations run through sql.migrate (e.g. `trading-signals db "
            "upgrade`), which passes a database connection; the alembic command line is not "
            "configured for this project"
        )
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things in place; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError(
        "offline (--sql) migrations are not supported: run `trading-signals db upgrade` "
        "against the database instead"
    )
_run_online()
