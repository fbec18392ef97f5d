"""Migrations and the artifact database against a real PostgreSQL server."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from resources.database import ArtifactDatabase, ArtifactRecord
from sql.engine import create_database_engine
from sql.migrate import (
    SchemaBehindError,
    alembic_config,
    check_schema_current,
    current_revision,
    head_revision,
    upgrade,
)
from sql.schema import metadata

pytestmark = pytest.mark.integration

JSON_COLUMNS = {"chart_data", "signal_data", "artifact_metadata"}
INDEXES = {
    "ix_artifacts_workflow_id": ["workflow_id"],
    "ix_artifacts_execution_id": ["execution_id"],
    "ix_artifacts_workflow_id_execution_id": ["workflow_id", "execution_id"],
    "ix_artifacts_dag_id": ["dag_id"],
    "ix_artifacts_step_name": ["step_name"],
    "ix_artifacts_type": ["type"],
    "ix_artifacts_symbol": ["symbol"],
    "ix_artifacts_created_at": ["created_at"],
    "ix_artifacts_symbol_partition_date": ["symbol", "partition_date"],
    "ix_artifacts_step_name_partition_key_id": ["step_name", "partition_key", "id"],
    "ux_artifacts_write_key": ["write_key"],
    # 0005: the artifact browser's newest-first pages.
    "ix_artifacts_created_at_id": ["created_at", "id"],
    "ix_artifacts_type_created_at_id": ["type", "created_at", "id"],
    "ix_artifacts_symbol_created_at_id": ["symbol", "created_at", "id"],
    "ix_artifacts_partition_date_created_at_id": ["partition_date", "created_at", "id"],
}


def _with_password(url: str, password: str) -> str:
    # Trust auth ignores the password, which lets the tests check it never leaks.
    return url.replace("postgres@", f"postgres:{password}@", 1)


def test_upgrade_creates_jsonb_columns_indexes_and_the_type_check(postgres_url: str) -> None:
    assert current_revision(postgres_url) is None
    assert upgrade(postgres_url) == (None, head_revision())
    check_schema_current(postgres_url)

    engine = create_database_engine(postgres_url)
    try:
        with engine.connect() as connection:
            types = dict(
                connection.execute(
                    sa.text(
                        "SELECT column_name, data_type FROM information_schema.columns "
                        "WHERE table_name = 'artifacts'"
                    )
                ).all()
            )
            assert {c: types[c] for c in JSON_COLUMNS} == dict.fromkeys(JSON_COLUMNS, "jsonb")
            assert types["created_at"] == "timestamp with time zone"
            assert types["size_bytes"] == "bigint" and types["partition_date"] == "date"
            assert set(types) == {c.name for c in metadata.tables["artifacts"].columns}

            inspector = sa.inspect(connection)
            indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes("artifacts")}
            assert indexes == INDEXES
            checks = [c["name"] for c in inspector.get_check_constraints("artifacts")]
            assert checks == ["ck_artifacts_type"]
            assert compare_metadata(MigrationContext.configure(connection), metadata) == []
    finally:
        engine.dispose()


def test_a_database_at_base_is_behind_and_the_message_hides_the_password(
    postgres_url: str,
) -> None:
    url = _with_password(postgres_url, "s3cret-pw")
    upgrade(url)
    engine = create_database_engine(url)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    engine.dispose()
    with pytest.raises(SchemaBehindError) as excinfo:
        check_schema_current(url)
    message = str(excinfo.value)
    assert "`trading-signals db upgrade`" in message and head_revision() in message
    assert "s3cret" not in message and "postgres:***@127.0.0.1" in message


def test_the_artifact_database_refuses_an_unmigrated_postgres_then_works(
    postgres_url: str,
) -> None:
    # auto_migrate_sqlite only ever applies to SQLite: production schemas change explicitly.
    db = ArtifactDatabase(url=_with_password(postgres_url, "s3cret-pw"))
    now = dt.datetime.now(dt.UTC)
    record = ArtifactRecord(
        name="trading_signal:TSLA:2025-01-02", type="signal", symbol="TSLA",
        step_name="trading_signal", partition_key="2025-01-02|TSLA",
        partition_date=dt.date(2025, 1, 2), signal_data={"action": "BUY", "support": None},
        artifact_metadata={"nested": {"list": [1, 2.5, "x"]}}, object_uri="file:///x.json",
        content_hash="0" * 64, size_bytes=5_000_000_000, created_at=now, updated_at=now,
    )
    with pytest.raises(SchemaBehindError) as excinfo:
        db.insert(record)
    assert "s3cret" not in str(excinfo.value)

    upgrade(db.url)
    fresh = ArtifactDatabase(url=db.url)
    try:
        first = fresh.insert(record)
        second = fresh.insert(record.model_copy(update={"execution_id": "run-2"}))
        latest = fresh.latest("trading_signal", "2025-01-02|TSLA")
        assert latest == record.model_copy(update={"id": second, "execution_id": "run-2"})
        assert [r.id for r in fresh.query(symbol="TSLA")] == [second, first]
        assert fresh.query(partition_date=dt.date(2025, 1, 2), limit=1)[0].id == second
    finally:
        fresh.dispose()
        db.dispose()


def test_a_postgres_database_of_the_previous_release_refuses_writes_until_upgraded(
    postgres_url: str,
) -> None:
    from tests.sql.older_database import OLD_ROW, make_release_0001_database

    make_release_0001_database(postgres_url)
    database = ArtifactDatabase(url=postgres_url)
    with pytest.raises(SchemaBehindError, match="run `trading-signals db upgrade`"):
        database.ensure_ready()
    assert upgrade(postgres_url) == ("0001", head_revision())
    (row,) = ArtifactDatabase(url=postgres_url).query()
    assert row.name == OLD_ROW["name"] and row.write_key is None
    database.dispose()
