"""How to connect to the artifacts database: URL rules, password masking and engine options."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, unquote_plus

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
    """The database URL with every secret in it replaced by ``***``, safe to print and store.

    SQLAlchemy's parser decides whether the URL is one at all; the masking itself is done on the
    text (see ``mask_url``) so that nothing SQLAlchemy would re-encode or mis-split can leak.
    """
    normalized = normalize_database_url(url)
    try:
        sa.make_url(_without_password(normalized))
    except (ArgumentError, ValueError):
        return _opaque(normalized)
    return mask_url(normalized, bare_user_is_secret=False)


# Query parameters whose value is a secret, by (lower-cased) name or a word in it: libpq's
# password / sslpassword, S3-style access keys and signatures, OAuth and API tokens. `passfile`,
# `sslcert` and `sslrootcert` name files, not secrets, and stay visible.
_SECRET_QUERY_WORDS = ("password", "passwd", "pwd", "secret", "token", "key", "signature",
                       "credential", "auth")
_SECRET_QUERY_NAMES = frozenset({"pass", "pw", "sig", "sas"})
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")


def is_secret_query_key(name: str) -> bool:
    key = unquote_plus(name).strip().lower()
    return key in _SECRET_QUERY_NAMES or any(word in key for word in _SECRET_QUERY_WORDS)


def _opaque(url: str) -> str:
    # Unparseable: nothing after the scheme can be told apart from a password.
    scheme, sep, _ = url.strip().partition("://")
    if sep and _SCHEME.fullmatch(scheme):
        return f"{scheme}://*** (unparseable URL, hidden)"
    return "*** (unparseable URL, hidden)"


def _split(url: str) -> tuple[str, str | None, str, str | None, str | None] | None:
    """(scheme, userinfo, host and path, query, fragment) or None when ``url`` has no scheme.

    The userinfo ends at the *last* ``@`` of the authority, so a password with an unencoded
    ``@`` (or ``/``, ``?``) is still taken whole.
    """
    scheme, sep, rest = url.strip().partition("://")
    if not sep or not _SCHEME.fullmatch(scheme):
        return None
    userinfo: str | None = None
    at = rest.rfind("@")
    if at >= 0 and "/" not in rest[:at].partition(":")[0]:
        userinfo, rest = rest[:at], rest[at + 1 :]
    rest, hash_sign, fragment = rest.partition("#")
    location, question, query = rest.partition("?")
    return (scheme, userinfo, location, query if question else None,
            fragment if hash_sign else None)


def _without_password(url: str) -> str:
    parts = _split(url)
    if parts is None or parts[1] is None:
        return url
    scheme, userinfo, location, query, _ = parts
    user = userinfo.partition(":")[0]
    return f"{scheme}://{user}@{location}" + (f"?{query}" if query is not None else "")


def mask_url(url: str, *, bare_user_is_secret: bool = True) -> str:
    """Any URL (database, MLflow, webhook, S3 endpoint) with its secrets replaced by ``***``.

    Hidden: the password, secret query parameters (``is_secret_query_key``) and the fragment;
    also a bare ``token@host`` user when ``bare_user_is_secret`` (HTTP tokens are sent that way;
    a database user name is not a secret). Text without a scheme is shown only when it cannot
    hold a secret (a plain path, as MLflow accepts); otherwise it is hidden whole.
    """
    parts = _split(url)
    if parts is None:
        return _opaque(url) if re.search(r"[@?#]", url) else url.strip()
    scheme, userinfo, location, query, fragment = parts
    text = f"{scheme}://"
    if userinfo is not None:
        user, colon, _ = userinfo.partition(":")
        if colon:
            text += f"{user}:***@"
        else:
            text += "***@" if bare_user_is_secret else f"{user}@"
    text += location
    if query is not None:
        pieces = []
        for piece in re.split(r"([&;])", query):
            name, equals, _ = piece.partition("=")
            pieces.append(f"{name}=***" if equals and is_secret_query_key(name) else piece)
        text += "?" + "".join(pieces)
    if fragment:
        text += "#***"
    return text


def url_secrets(url: str) -> set[str]:
    """The secret parts of ``url`` as written and percent-decoded: for scrubbing other text."""
    parts = _split(url)
    if parts is None:
        return {url.strip()} if url.strip() else set()
    _, userinfo, _, query, fragment = parts
    found: set[str] = set()
    if userinfo is not None:
        user, colon, password = userinfo.partition(":")
        found.add(password if colon else user)
    for piece in re.split(r"[&;]", query or ""):
        name, equals, value = piece.partition("=")
        if equals and is_secret_query_key(name):
            found.add(value)
    if fragment:
        found.add(fragment)
    found |= {unquote_plus(s) for s in found} | {unquote(s) for s in found}
    return {s for s in found if s}


def is_sqlite(url: str) -> bool:
    return parse_database_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: str) -> Path | None:
    """The SQLite database file ``url`` names; None for PostgreSQL and in-memory databases."""
    parsed = parse_database_url(url)
    return _sqlite_file(parsed) if parsed.get_backend_name() == "sqlite" else None


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
