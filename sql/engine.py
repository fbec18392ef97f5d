"""How to connect to the artifacts database: URL rules, password masking and engine options."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import ArgumentError

SUPPORTED_URLS = (
    "sqlite:///path/to/artifacts.db or postgresql+psycopg2://user:password@host:5432/db"
)
SQLITE_BUSY_TIMEOUT_MS = 30_000
POSTGRES_CONNECT_TIMEOUT_S = 10
POSTGRES_STATEMENT_TIMEOUT_MS = 30_000

# SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, which is not installed; psycopg2 is.
_POSTGRES_PREFIXES = ("postgresql://", "postgres://")


class DatabaseUrlError(ValueError):
    """A database URL that cannot be parsed or names an unsupported database."""


def normalize_database_url(url: str) -> str:
    """``url`` with PostgreSQL spelled for the installed driver (psycopg2); others unchanged."""
    stripped = url.strip()
    for prefix in _POSTGRES_PREFIXES:
        if stripped.startswith(prefix):
            return "postgresql+psycopg2://" + stripped.removeprefix(prefix)
    return stripped


def parse_database_url(url: str) -> URL:
    """The normalized URL, parsed; errors never repeat the URL since it may hold a password."""
    try:
        parsed = sa.make_url(normalize_database_url(url))
    except (ArgumentError, ValueError) as exc:
        # The cause is dropped on purpose: its text can echo part of the password back.
        raise DatabaseUrlError(
            f"the artifact database URL (DATABASE_URL) cannot be parsed ({type(exc).__name__}): "
            f"use {SUPPORTED_URLS}; percent-encode special characters in the password "
            "(e.g. @ as %40)"
        ) from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise DatabaseUrlError(
            f"the artifact database {mask_database_url(url)} is a {parsed.get_backend_name()} "
            f"database; only SQLite and PostgreSQL are supported: use {SUPPORTED_URLS}"
        )
    return parsed


def mask_database_url(url: str) -> str:
    """The URL with its password replaced by ``***``, safe to print and log."""
    try:
        return sa.make_url(normalize_database_url(url)).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<unparseable database URL>"


def is_sqlite(url: str) -> bool:
    return parse_database_url(url).get_backend_name() == "sqlite"


def _sqlite_file(url: URL) -> Path | None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def create_database_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with bounded waits: nothing connecting to the database may hang forever."""
    parsed = parse_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_file(parsed)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs
        )
        sa.event.listen(engine, "connect", _configure_sqlite_connection)
        return engine
    return sa.create_engine(
        parsed,
        pool_pre_ping=True,
        connect_args={
            "connect_timeout": POSTGRES_CONNECT_TIMEOUT_S,
            "options": f"-c statement_timeout={POSTGRES_STATEMENT_TIMEOUT_MS}",
        },
        **kwargs,
    )


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the UI and the CLI read while a run writes; busy_timeout waits out short locks.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()
