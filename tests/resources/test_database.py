"""ArtifactDatabase on SQLite: rows in and out, newest first, and no writes to an old schema."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from resources.database import ArtifactDatabase, ArtifactRecord
from sql.migrate import SchemaBehindError, current_revision, head_revision, upgrade

NOW = dt.datetime(2025, 1, 2, 22, 0, tzinfo=dt.UTC)


def _record(**fields: object) -> ArtifactRecord:
    defaults: dict[str, object] = {
        "name": "trading_signal:TSLA:2025-01-02",
        "type": "signal",
        "symbol": "TSLA",
        "step_name": "trading_signal",
        "execution_id": "run-1",
        "partition_key": "2025-01-02|TSLA",
        "partition_date": dt.date(2025, 1, 2),
        "signal_data": {"action": "BUY", "key_factors": ["a", "b"], "support": None},
        "object_uri": "file:///objects/x.json",
        "content_hash": "0" * 64,
        "size_bytes": 10,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return ArtifactRecord(**{**defaults, **fields})


@pytest.fixture
def db(tmp_path: Path) -> ArtifactDatabase:
    return ArtifactDatabase(url=f"sqlite:///{tmp_path}/nested/artifacts.db")


def test_first_write_migrates_the_embedded_sqlite(db: ArtifactDatabase, tmp_path: Path) -> None:
    artifact_id = db.insert(_record())
    assert artifact_id == 1
    assert (tmp_path / "nested" / "artifacts.db").is_file()
    assert current_revision(db.url) == head_revision()


def test_rows_round_trip_with_utc_timestamps(db: ArtifactDatabase) -> None:
    record = _record()
    artifact_id = db.insert(record)
    loaded = db.get(artifact_id)
    assert loaded == record.model_copy(update={"id": artifact_id})
    assert loaded is not None and loaded.created_at.tzinfo is dt.UTC
    assert db.get(artifact_id + 1) is None


def test_latest_is_the_newest_row_of_that_asset_and_partition(db: ArtifactDatabase) -> None:
    first = db.insert(_record(execution_id="run-1"))
    second = db.insert(_record(execution_id="run-2"))
    db.insert(_record(partition_key="2025-01-03|TSLA", execution_id="run-3"))
    db.insert(_record(step_name="order", type="order", execution_id="run-4"))
    latest = db.latest("trading_signal", "2025-01-02|TSLA")
    assert latest is not None and latest.id == second and latest.id > first
    assert db.latest("trading_signal", "2025-01-02|NVDA") is None


def test_query_filters_newest_first_with_a_limit(db: ArtifactDatabase) -> None:
    ids = [db.insert(_record(execution_id=f"run-{i}")) for i in range(3)]
    db.insert(_record(symbol="NVDA", partition_key="2025-01-02|NVDA", execution_id="run-x"))
    db.insert(_record(type="chart", step_name="daily_chart", partition_date=dt.date(2025, 1, 3),
                      execution_id="run-x"))
    tsla = db.query(symbol="TSLA", type="signal")
    assert [r.id for r in tsla] == ids[::-1]
    assert [r.id for r in db.query(symbol="TSLA", type="signal", limit=2)] == ids[:0:-1]
    assert [r.execution_id for r in db.query(execution_id="run-1")] == ["run-1"]
    assert [r.step_name for r in db.query(partition_date=dt.date(2025, 1, 3))] == ["daily_chart"]
    assert len(db.query(step_name="trading_signal")) == 4
    assert len(db.query()) == 5
    with pytest.raises(ValueError, match="limit must be at least 1"):
        db.query(limit=0)


def test_the_type_check_constraint_holds(db: ArtifactDatabase) -> None:
    db.insert(_record())
    with db._ready_engine().begin() as connection, pytest.raises(sa.exc.IntegrityError):
        connection.execute(
            sa.text(
                "INSERT INTO artifacts (name, type, object_uri, content_hash, size_bytes, "
                "created_at, updated_at) VALUES ('x', 'bogus', 'u', 'h', 1, :t, :t)"
            ),
            {"t": NOW},
        )


def test_refuses_to_write_when_the_schema_is_behind(tmp_path: Path) -> None:
    db = ArtifactDatabase(url=f"sqlite:///{tmp_path}/old.db", auto_migrate_sqlite=False)
    with pytest.raises(SchemaBehindError) as excinfo:
        db.insert(_record())
    message = str(excinfo.value)
    assert "trading-signals db upgrade" in message and head_revision() in message
    assert "none (no tables yet)" in message
    assert not sa.inspect(sa.create_engine(db.url)).has_table("artifacts")

    assert upgrade(db.url) == (None, head_revision())
    assert db.insert(_record()) == 1


def test_masked_url_hides_the_password() -> None:
    db = ArtifactDatabase(url="postgresql://trader:s3cret-pw@db.internal:5432/artifacts")
    assert db.masked_url() == "postgresql+psycopg2://trader:***@db.internal:5432/artifacts"
    assert "s3cret" not in db.masked_url()
    assert "s3cret" not in repr(db) and "trader:***@db.internal" in repr(db)
    assert "s3cret" not in str(db)
