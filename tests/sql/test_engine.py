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


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # A password in the query string (libpq reads it there too), any case.
        (
            "postgresql+psycopg2://u:S3cr%40t-XYZ@127.0.0.1:1/db?password=S3cretQ",
            "postgresql+psycopg2://u:***@127.0.0.1:1/db?password=***",
        ),
        (
            "postgresql://u@db/a?sslmode=require&PassWord=x&sslpassword=y&passfile=/h/.pgpass",
            "postgresql+psycopg2://u@db/a?sslmode=require&PassWord=***&sslpassword=***"
            "&passfile=/h/.pgpass",
        ),
        ("sqlite:////srv/a.db?password=zz&timeout=5", "sqlite:////srv/a.db?password=***&timeout=5"),
        ("postgresql://u@db/a?aws_secret_access_key=k&api_token=t&X-Amz-Signature=s",
         "postgresql+psycopg2://u@db/a?aws_secret_access_key=***&api_token=***"
         "&X-Amz-Signature=***"),
        # Unencoded `@`, `/` or `?` in the password: taken whole, never partly shown.
        ("postgresql://u:P@ss@w0rd@db:5432/a", "postgresql+psycopg2://u:***@db:5432/a"),
        ("postgresql://u:pa/ss?x@db/a", "postgresql+psycopg2://u:***@db/a"),
        ("postgresql://bob@db/a", "postgresql+psycopg2://bob@db/a"),  # a user is no secret
    ],
)
def test_mask_hides_every_secret(url: str, shown: str) -> None:
    assert mask_database_url(url) == shown


@pytest.mark.parametrize(
    "url",
    ["postgresql://trader:s3cret@db:notaport/artifacts", "trader:s3cret@db/artifacts", "s3cret"],
)
def test_an_unparseable_url_is_hidden_after_its_scheme(url: str) -> None:
    masked = mask_database_url(url)
    assert "s3cret" not in masked and "unparseable" in masked
    assert masked.startswith("postgresql+psycopg2://***") or masked.startswith("***")


def test_url_secrets_lists_each_secret_as_written_and_decoded() -> None:
    from sql.engine import url_secrets

    found = url_secrets("postgresql+psycopg2://u:S3cr%40t@h/db?password=Q%21&sslmode=require")
    assert found == {"S3cr%40t", "S3cr@t", "Q%21", "Q!"}


def test_masking_covers_the_other_urls_shown() -> None:
    from resources.s3_object_store import s3_object_store
    from trading_assets.cli import _alerts

    store = s3_object_store(endpoint_url="http://ak:sk-secret@minio:9000", bucket="b",
                            access_key=None, secret_key=None, region="us-east-1", max_attempts=1)
    assert "sk-secret" not in store.describe() and "ak:***@minio:9000" in store.describe()
    shown = _alerts("https://hooks.slack.com/services/T0/B0/tok3n?x=1")
    assert "tok3n" not in shown and "hooks.slack.com" in shown
