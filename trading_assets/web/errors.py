"""What can go wrong serving a request, as exceptions that know their HTTP status.

Every message is meant for the person reading it: what failed and what to do. Secrets never get
here (stores describe themselves with masked URLs), and the app scrubs known secrets once more.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy.exc

from io_managers.resilience import first_line, is_transient
from sql.migrate import SCHEMA_ERRORS


class BrowserError(Exception):
    """An error answered as ``{"error": message}`` with ``status``."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadParameter(BrowserError):
    status = 422

    def __init__(self, parameter: str, problem: str) -> None:
        super().__init__(f"{parameter}: {problem}")
        self.parameter = parameter


class NotFound(BrowserError):
    status = 404


class StoreDown(BrowserError):
    """The artifacts database or the object store does not answer (or cannot be used yet)."""

    status = 503


class ArtifactUnreadable(BrowserError):
    """A row whose stored object is missing, altered, or in a store this server cannot read."""

    status = 500


def _reason(exc: BaseException) -> str:
    # A DBAPI error's own first line (refused, timeout, auth) never holds the SQL or the URL.
    inner = exc.orig if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.orig else exc
    return f"{type(inner).__name__}: {first_line(inner)}"


@contextmanager
def store_guard(store: str, fix: str) -> Iterator[None]:
    """Turn a store that is down, slow or not migrated into StoreDown naming ``store``.

    ``store`` is the store as people know it, secrets masked (``database sqlite:///...``).
    Anything else (a bug, a bad value) propagates as it is.
    """
    try:
        yield
    except SCHEMA_ERRORS as exc:
        raise StoreDown(f"the {store} cannot be read yet: {first_line(exc)}") from exc
    except Exception as exc:
        if not is_transient(exc):
            raise
        raise StoreDown(f"the {store} does not answer ({_reason(exc)}): {fix}") from exc
