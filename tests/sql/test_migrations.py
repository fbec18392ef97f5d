"""Migrations on SQLite: upgrade from empty, idempotence, concurrency, and behind/ahead checks."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from sql.engine import create_database_engine
from sql.migrate import (
    SchemaAheadError,
    SchemaBehindError,
    UnmanagedSchemaError,
    alembic_config,
    check_schema_current,
    current_revision,
    head_revision,
    upgrade,
)
from sql.schema import metadata


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/db/artifacts.db"


def test_head_revision() -> None:
    assert head_revision() == "0005"


def test_upgrade_an_empty_database(url: str) -> None:
    assert current_revision(url) is None
    assert upgrade(url) == (None, head_revision())
    assert current_revision(url) == head_revision()
    check_schema_current(url)
    assert upgrade(url) == (head_revision(), head_revision())


def test_migrations_create_exactly_the_application_schema(url: str) -> None:
    upgrade(url)
    engine = create_database_engine(url)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
    engine.dispose()


def test_concurrent_first_runs_migrate_once(url: str) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: upgrade(url), range(4)))
    assert results.count((None, head_revision())) == 1
    assert results.count((head_revision(), head_revision())) == 3


def test_database_at_base_is_behind_and_says_how_to_fix_it(url: str) -> None:
    upgrade(url)
    engine = create_database_engine(url)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    engine.dispose()
    assert current_revision(url) is None
    with pytest.raises(SchemaBehindError) as excinfo:
        check_schema_current(url)
    message = str(excinfo.value)
    assert "`trading-signals db upgrade`" in message
    assert url in message and head_revision() in message


def test_database_from_a_newer_version_is_reported_as_ahead(url: str) -> None:
    upgrade(url)
    engine = create_database_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '0999'"))
    engine.dispose()
    with pytest.raises(SchemaAheadError, match="0999, which this version of trading-signals"):
        check_schema_current(url)
    with pytest.raises(SchemaAheadError):
        upgrade(url)


def test_an_artifacts_table_the_migrations_did_not_create_is_refused(url: str) -> None:
    engine = create_database_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE artifacts (id INTEGER PRIMARY KEY, name TEXT)"))
    engine.dispose()
    with pytest.raises(SchemaBehindError, match="`trading-signals db upgrade`"):
        check_schema_current(url)
    with pytest.raises(UnmanagedSchemaError, match="RENAME TO artifacts_old"):
        upgrade(url)
    assert current_revision(url) is None


def test_a_database_of_the_previous_release_is_behind_then_upgraded_with_its_rows(
    url: str,
) -> None:
    from resources.database import ArtifactDatabase
    from tests.sql.older_database import OLD_ROW, make_release_0001_database

    make_release_0001_database(url)
    assert current_revision(url) == "0001"
    with pytest.raises(SchemaBehindError, match="at schema revision 0001"):
        check_schema_current(url)
    assert upgrade(url) == ("0001", head_revision())
    (row,) = ArtifactDatabase(url=url, auto_migrate_sqlite=False).query()
    assert row.name == OLD_ROW["name"] and row.write_key is None  # kept, with no write key


@pytest.mark.parametrize("kind", ["outcome", "scorecard", "plot"])
def test_0003_admits_the_evaluation_types_and_still_refuses_unknown_ones(
    url: str, kind: str
) -> None:
    import sqlalchemy as sa
    from alembic import command

    from sql.migrate import alembic_config

    def insert(engine: sa.Engine, type_: str) -> None:
        now = "2026-12-01 00:00:00"
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO artifacts (name, type, object_uri, content_hash, size_bytes, "
                    "created_at, updated_at) VALUES ('x', :t, 'file:///x', 'h', 1, :n, :n)"
                ),
                {"t": type_, "n": now},
            )

    engine = create_database_engine(url)
    with engine.begin() as connection:
        config = alembic_config(connection)
        command.upgrade(config, "0002")
    with pytest.raises(sa.exc.IntegrityError):
        insert(engine, kind)  # 0002 does not know the type yet
    upgrade(url)
    insert(engine, kind)
    with pytest.raises(sa.exc.IntegrityError, match="ck_artifacts_type|CHECK"):
        insert(engine, "nonsense")
    engine.dispose()
