"""Bring an artifacts database to the newest schema, or tell whether it is there.

Alembic is configured in code (``script_location`` = ``sql/migrations``); no alembic.ini.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from sql.engine import create_database_engine, mask_database_url, sqlite_path
from sql.locks import initialisation_lock

# Alembic (and Mako under it) is imported when a schema is read or migrated, not when the code
# location loads: importing it cost more than a tenth of a second of every load.
if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import Connection

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
UPGRADE_COMMAND = "trading-signals db upgrade"
# Any constant works; it only has to be the same for every process migrating this schema.
_PG_MIGRATION_LOCK_ID = 0x7A_71_F4_C7


class SchemaBehindError(RuntimeError):
    """The database's schema is older than this code's: it must be upgraded before use."""


class UnmanagedSchemaError(RuntimeError):
    """The database has an ``artifacts`` table that the migrations did not create."""


class SchemaAheadError(RuntimeError):
    """The database was migrated by a newer version of this code than the one running."""


# A database in one of these states needs a person (or `trading-signals db upgrade`), not a retry.
SCHEMA_ERRORS: tuple[type[Exception], ...] = (
    SchemaBehindError,
    SchemaAheadError,
    UnmanagedSchemaError,
)


def alembic_config(
    connection: Connection | None = None, directory: Path = MIGRATIONS_DIR
) -> Config:
    """Alembic's configuration for the migrations in ``directory`` (default: the artifacts
    schema's); commands that touch a database need ``connection``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(directory))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = _scripts().get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}: the package is incomplete")
    return head


def _revision_of(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def current_revision(url: str) -> str | None:
    """The revision the database is at; None for a database the migrations never touched."""
    engine = create_database_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            return _revision_of(connection)
    finally:
        engine.dispose()


@contextmanager
def _locked_transaction(url: str) -> Iterator[Connection]:
    """A connection inside a transaction that no other migrating process can enter meanwhile."""
    engine = create_database_engine(url, poolclass=sa.NullPool)
    if engine.dialect.name == "sqlite":
        # pysqlite only opens transactions lazily on DML, so DDL would escape the lock; take
        # SQLite's write lock ourselves at BEGIN (the documented SQLAlchemy recipe).
        @sa.event.listens_for(engine, "connect")
        def _manual_transactions(dbapi_connection: object, _record: object) -> None:
            dbapi_connection.isolation_level = None  # type: ignore[attr-defined]

        @sa.event.listens_for(engine, "begin")
        def _begin_immediate(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    try:
        with engine.connect() as connection, connection.begin():
            if engine.dialect.name == "postgresql":
                connection.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_MIGRATION_LOCK_ID}
                )
            yield connection
    finally:
        engine.dispose()


def upgrade(url: str) -> tuple[str | None, str]:
    """Migrate the database at ``url`` to the head revision; returns (before, after)."""
    path = sqlite_path(url)
    # A new SQLite file is created (and switched to WAL) by the first connection, before any
    # transaction can lock it: processes starting together take a file lock beside it first.
    lock = initialisation_lock(path.resolve()) if path is not None else contextlib.nullcontext()
    with lock:
        return _upgrade(url)


def _upgrade(url: str) -> tuple[str | None, str]:
    from alembic import command

    with _locked_transaction(url) as connection:
        # Read under the lock: another process may have just finished the same upgrade.
        before = _revision_of(connection)
        _check_known(url, before)
        if before is None:
            _check_no_unmanaged_table(url, connection)
        if before != head_revision():
            command.upgrade(alembic_config(connection), "head")
        after = _revision_of(connection)
    if after is None:
        raise RuntimeError(
            f"upgrading {mask_database_url(url)} left it without a schema revision; "
            "check that the database user may create tables"
        )
    return before, after


def _check_known(url: str, revision: str | None) -> None:
    if revision is None:
        return
    known = {script.revision for script in _scripts().walk_revisions()}
    if revision not in known:
        raise SchemaAheadError(
            f"the artifact database {mask_database_url(url)} is at schema revision "
            f"{revision}, which this version of trading-signals does not know (its newest is "
            f"{head_revision()}): it was migrated by a newer version; upgrade trading-signals "
            "instead of the database"
        )


def _check_no_unmanaged_table(url: str, connection: Connection) -> None:
    # An `artifacts` table without a revision was made by something else (the previous system, a
    # hand-written CREATE TABLE): migrating over it would fail half-way or mix two schemas.
    if sa.inspect(connection).has_table("artifacts"):
        raise UnmanagedSchemaError(
            f"the artifact database {mask_database_url(url)} already has an `artifacts` table "
            "that these migrations did not create (no alembic_version row): it is probably the "
            "previous system's. Point DATABASE_URL at a new, empty database (and copy the old "
            "rows over if you need them), or rename the old table (ALTER TABLE artifacts "
            f"RENAME TO artifacts_old), then run `{UPGRADE_COMMAND}` again"
        )


def check_schema_current(url: str) -> None:
    """Raise ``SchemaBehindError`` (with the command that fixes it) unless the schema is at head."""
    current = current_revision(url)
    head = head_revision()
    if current == head:
        return
    _check_known(url, current)
    raise SchemaBehindError(
        f"the artifact database {mask_database_url(url)} is at schema revision "
        f"{current or 'none (no tables yet)'}, but this code needs revision {head}: run "
        f"`{UPGRADE_COMMAND}` (with the same DATABASE_URL) and retry"
    )


def upgrade_tree(url: str, directory: Path, version_table: str) -> tuple[str | None, str]:
    """Migrate the database at ``url`` to the head of the migrations in ``directory`` (a schema
    of its own, e.g. the paper simulator's, whose env.py keeps its revision in
    ``version_table``), under the same locks; returns (before, after)."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = alembic_config(directory=directory)
    scripts = ScriptDirectory.from_config(config)
    path = sqlite_path(url)
    lock = initialisation_lock(path.resolve()) if path is not None else contextlib.nullcontext()
    with lock, _locked_transaction(url) as connection:
        config.attributes["connection"] = connection
        context = MigrationContext.configure(
            connection, opts={"version_table": version_table}
        )
        before = context.get_current_revision()
        head = scripts.get_current_head()
        if head is None:
            raise RuntimeError(f"no migrations found in {directory}: the package is incomplete")
        if before != head:
            command.upgrade(config, "head")
    return before, head


def run_online(context: Any, metadata: sa.MetaData, version_table: str = "alembic_version") -> None:
    """The body of a migrations folder's env.py: migrate over the connection ``sql.migrate``
    passes (already inside the transaction that holds the migration lock)."""
    config = context.config
    connection = config.attributes.get("connection")
    if context.is_offline_mode() or connection is None:
        raise RuntimeError(
            "these migrations run through sql.migrate (e.g. `trading-signals db upgrade`), "
            "which passes a database connection; the alembic command line and offline (--sql) "
            "migrations are not configured for this project"
        )
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=version_table,
        # SQLite cannot ALTER most things in place; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
