"""Database URLs: spelled for the installed driver, printable without the password."""

from __future__ import annotations

import pytest

from sql.engine import DatabaseUrlError, mask_database_url, normalize_database_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:p@h:5432/d", "postgresql+psycopg2://u:p@h:5432/d"),
        ("postgres://u:p@h/d", "postgresql+psycopg2://u:p@h/d"),
        ("postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d"),  # an explicit driver
        ("postgresql+psycopg2://u@h/d", "postgresql+psycopg2://u@h/d"),
        ("  sqlite:///data/artifacts.db ", "sqlite:///data/artifacts.db"),
    ],
)
def test_normalize_database_url(url: str, expected: str) -> None:
    assert normalize_database_url(url) == expected


def test_mask_hides_the_password() -> None:
    masked = mask_database_url("postgres://trader:s3cret%40pw@db:5432/artifacts")
    assert masked == "postgresql+psycopg2://trader:***@db:5432/artifacts"
    assert mask_database_url("sqlite:///data/artifacts.db") == "sqlite:///data/artifacts.db"


def test_unparseable_url_error_does_not_echo_the_password() -> None:
    from sql.engine import parse_database_url

    with pytest.raises(DatabaseUrlError) as excinfo:
        parse_database_url("postgresql://trader:s3cret@db:notaport/artifacts")
    assert "s3cret" not in str(excinfo.value) and excinfo.value.__cause__ is None
    assert "postgresql+psycopg2://" in str(excinfo.value)


def test_other_databases_are_refused_by_name() -> None:
    from sql.engine import parse_database_url

    with pytest.raises(DatabaseUrlError, match="is a mysql database; only SQLite and PostgreSQL"):
        parse_database_url("mysql://trader:s3cret@db/artifacts")
