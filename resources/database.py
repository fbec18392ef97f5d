"""The artifacts database (SQLite by default, PostgreSQL in production) as a Dagster resource."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal

import dagster as dg
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from sql.engine import create_database_engine, is_sqlite, mask_database_url
from sql.migrate import check_schema_current, upgrade
from sql.schema import artifact_checks, artifacts

ArtifactType = Literal[
    "market_data", "chart", "llm", "signal", "order", "portfolio", "outcome", "scorecard", "plot"
]

# "Newest" everywhere: when the artifact was produced (kept through the spool), then the id for
# two rows of the same instant. Never the id alone: a replayed row gets a new, higher id.
NEWEST_FIRST = (artifacts.c.created_at.desc(), artifacts.c.id.desc())


class ArtifactRecord(BaseModel):
    """One row of the ``artifacts`` table; ``id`` is None until the row is inserted."""

    # Built from rows by column name, and from code by field name.
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    id: int | None = None
    name: str
    type: ArtifactType
    symbol: str | None = None
    # The MLflow run and experiment that logged the row (columns run_id and experiment_id, the
    # previous system's names); the Dagster run is execution_id.
    mlflow_run_id: str | None = Field(default=None, alias="run_id")
    mlflow_experiment_id: str | None = Field(default=None, alias="experiment_id")
    workflow_id: str | None = None
    execution_id: str | None = None
    step_name: str | None = None
    dag_id: str | None = None
    task_id: str | None = None
    partition_key: str | None = None
    partition_date: dt.date | None = None
    prompt: str | None = None
    response: str | None = None
    prompt_length: int | None = None
    response_length: int | None = None
    model_name: str | None = None
    image_path: str | None = None
    chart_type: str | None = None
    chart_data: dict[str, Any] | None = None
    action: str | None = None
    confidence: float | None = None
    signal_data: dict[str, Any] | None = None
    artifact_metadata: dict[str, Any] | None = None
    object_uri: str
    content_hash: str
    size_bytes: int
    created_at: dt.datetime
    updated_at: dt.datetime
    # Unique: sha256 of (run, asset, partition, content), so a retried write inserts once.
    write_key: str | None = None

    @field_validator("created_at", "updated_at")
    @classmethod
    def _utc(cls, value: dt.datetime) -> dt.datetime:
        # SQLite hands timestamps back without their zone; the application only writes UTC.
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class CheckRecord(BaseModel):
    """One asset check's result on one artifact (a row of ``artifact_checks``)."""

    model_config = ConfigDict(frozen=True)

    write_key: str | None = None
    artifact_id: int | None = None
    asset: str
    partition_key: str | None = None
    check_name: str
    blocking: bool
    passed: bool
    description: str | None = None
    execution_id: str | None = None
    checked_at: dt.datetime

    @field_validator("checked_at")
    @classmethod
    def _utc(cls, value: dt.datetime) -> dt.datetime:
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class ArtifactDatabase(dg.ConfigurableResource):
    """Inserts and reads artifact rows; refuses to touch a database whose schema is behind.

    On SQLite with ``auto_migrate_sqlite`` the schema is upgraded on first use, so the
    embedded default works out of the box. Anything else must be upgraded explicitly with
    ``trading-signals db upgrade``.
    """

    url: str = "sqlite:///data/artifacts.db"
    auto_migrate_sqlite: bool = True

    _engine: Engine | None = PrivateAttr(default=None)
    _schema_ready: bool = PrivateAttr(default=False)

    def masked_url(self) -> str:
        return mask_database_url(self.url)

    def __repr_args__(self) -> Any:
        # repr() lands in logs and validation errors: never with the password.
        for name, value in super().__repr_args__():
            secret = name == "url" and isinstance(value, str) and not isinstance(value, dg.EnvVar)
            yield name, (self.masked_url() if secret else value)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self.dispose()

    def dispose(self) -> None:
        """Close pooled connections (the engine is recreated on next use)."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def schema_checked(self) -> bool:
        """Whether ``ensure_ready`` already passed for this instance (nothing left to check)."""
        return self._schema_ready

    def ensure_ready(self) -> None:
        """Raise ``SchemaBehindError`` (naming the upgrade command) unless the schema is current.

        Writers call it before anything else so a refused write leaves nothing behind, not even
        an object in the store.
        """
        self._ready_engine()

    def engine(self) -> Engine:
        """This resource's engine (its pool), the schema checked (or, for the embedded SQLite,
        brought up to date) on first use: for readers that build their own queries."""
        return self._ready_engine()

    def _ready_engine(self) -> Engine:
        if not self._schema_ready:
            if self.auto_migrate_sqlite and is_sqlite(self.url):
                upgrade(self.url)
            else:
                check_schema_current(self.url)
            self._schema_ready = True
        if self._engine is None:
            self._engine = create_database_engine(self.url)
        return self._engine

    def insert(self, record: ArtifactRecord) -> int:
        """Insert ``record`` (its ``id`` is ignored) and return the row's id."""
        return self.insert_once(record)[0]

    def insert_once(self, record: ArtifactRecord) -> tuple[int, bool]:
        """(row id, whether this call created it).

        A record with a ``write_key`` that is already in the table is not inserted again: the
        existing row's id comes back with False. This is what makes a retried write (whose first
        attempt timed out but committed) and a replay of the spool insert each artifact once.
        """
        values = record.model_dump(exclude={"id"}, by_alias=True)  # the table's column names
        engine = self._ready_engine()
        with engine.begin() as connection:
            if record.write_key is None:
                result = connection.execute(sa.insert(artifacts).values(**values))
                (artifact_id,) = result.inserted_primary_key or (None,)
                created = True
            else:
                insert = _dialect_insert(engine.dialect.name)(artifacts).values(**values)
                statement = insert.on_conflict_do_nothing(index_elements=["write_key"]).returning(
                    artifacts.c.id
                )
                artifact_id = connection.execute(statement).scalar()
                created = artifact_id is not None
                if artifact_id is None:
                    artifact_id = connection.execute(
                        sa.select(artifacts.c.id).where(artifacts.c.write_key == record.write_key)
                    ).scalar()
        if artifact_id is None:
            raise RuntimeError(
                f"{self.masked_url()} did not return an id for the artifact row {record.name}"
            )
        return int(artifact_id), created

    def by_write_key(self, write_key: str) -> ArtifactRecord | None:
        rows = self._fetch(sa.select(artifacts).where(artifacts.c.write_key == write_key))
        return rows[0] if rows else None

    def ping(self) -> None:
        """Raise unless the database answers (a cheap round trip, no schema check)."""
        with self._ready_engine().connect() as connection:
            connection.execute(sa.select(1))

    def between(
        self, start: dt.date, end: dt.date, *, symbols: Sequence[str] | None = None
    ) -> list[ArtifactRecord]:
        """Every row whose partition day is in [start, end] (all symbols unless given)."""
        statement = (
            sa.select(artifacts)
            .where(artifacts.c.partition_date >= start, artifacts.c.partition_date <= end)
            .order_by(artifacts.c.id)
        )
        if symbols:
            statement = statement.where(artifacts.c.symbol.in_(list(symbols)))
        return self._fetch(statement)

    def set_mlflow_ids(
        self, artifact_ids: Sequence[int], *, partition_key: str, run_id: str, experiment_id: str
    ) -> int:
        """Point rows of one partition at the MLflow run that logged them; returns rows updated."""
        if not artifact_ids:
            return 0
        statement = (
            sa.update(artifacts)
            .where(
                artifacts.c.id.in_(list(artifact_ids)),
                artifacts.c.partition_key == partition_key,
            )
            .values(run_id=run_id, experiment_id=experiment_id, updated_at=dt.datetime.now(dt.UTC))
        )
        with self._ready_engine().begin() as connection:
            return int(connection.execute(statement).rowcount)

    def latest(self, step_name: str, partition_key: str | None) -> ArtifactRecord | None:
        """The newest row of one asset and partition: latest ``created_at``, then highest id.

        By the time the artifact was produced, not by id: a spool replay inserts an older
        artifact with a new (higher) id, and it must not become the latest.
        ``partition_key`` None: the newest row of an unpartitioned asset (the scorecard).
        """
        key = artifacts.c.partition_key
        statement = (
            sa.select(artifacts)
            .where(
                artifacts.c.step_name == step_name,
                key.is_(None) if partition_key is None else key == partition_key,
            )
            .order_by(*NEWEST_FIRST)
            .limit(1)
        )
        rows = self._fetch(statement)
        return rows[0] if rows else None

    def newest_per_partition(
        self,
        step_name: str,
        *,
        start: dt.date | None = None,
        end: dt.date | None = None,
        symbols: Sequence[str] | None = None,
    ) -> list[ArtifactRecord]:
        """The newest row of ``step_name`` for each partition (in a day range, for symbols).

        Newest as in ``latest``: by ``created_at``, then id.
        """
        rank = (
            sa.func.row_number()
            .over(partition_by=artifacts.c.partition_key, order_by=list(NEWEST_FIRST))
            .label("rank")
        )
        ranked = sa.select(artifacts.c.id, rank).where(artifacts.c.step_name == step_name)
        if start is not None:
            ranked = ranked.where(artifacts.c.partition_date >= start)
        if end is not None:
            ranked = ranked.where(artifacts.c.partition_date <= end)
        if symbols:
            ranked = ranked.where(artifacts.c.symbol.in_(list(symbols)))
        ranked_rows = ranked.subquery()
        newest = sa.select(ranked_rows.c.id).where(ranked_rows.c.rank == 1)
        statement = (
            sa.select(artifacts)
            .where(artifacts.c.id.in_(newest.scalar_subquery()))
            .order_by(artifacts.c.partition_date, artifacts.c.symbol)
        )
        return self._fetch(statement)

    def partitions_with(self, step_name: str) -> dict[str, dt.date]:
        """partition key -> partition day of every partition that has a row of ``step_name``."""
        statement = (
            sa.select(artifacts.c.partition_key, artifacts.c.partition_date)
            .where(artifacts.c.step_name == step_name, artifacts.c.partition_key.is_not(None))
            .distinct()
        )
        with self._ready_engine().connect() as connection:
            rows = connection.execute(statement).all()
        return {key: day for key, day in rows}

    def get(self, artifact_id: int) -> ArtifactRecord | None:
        rows = self._fetch(sa.select(artifacts).where(artifacts.c.id == artifact_id))
        return rows[0] if rows else None

    def query(
        self,
        *,
        symbol: str | None = None,
        type: str | None = None,
        execution_id: str | None = None,
        partition_date: dt.date | None = None,
        step_name: str | None = None,
        limit: int = 100,
    ) -> list[ArtifactRecord]:
        """Rows matching every given filter, newest first (``created_at``, then id), at most
        ``limit``."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        filters = {
            artifacts.c.symbol: symbol,
            artifacts.c.type: type,
            artifacts.c.execution_id: execution_id,
            artifacts.c.partition_date: partition_date,
            artifacts.c.step_name: step_name,
        }
        statement = sa.select(artifacts).order_by(*NEWEST_FIRST).limit(limit)
        for column, value in filters.items():
            if value is not None:
                statement = statement.where(column == value)
        return self._fetch(statement)

    def record_checks(self, results: Sequence[CheckRecord]) -> None:
        """Append check results (one transaction: all of a step's results, or none)."""
        if not results:
            return
        with self._ready_engine().begin() as connection:
            connection.execute(sa.insert(artifact_checks), [r.model_dump() for r in results])

    def check_results(self, record: ArtifactRecord) -> dict[str, CheckRecord]:
        """check name -> the latest result recorded on ``record`` (by write key, else by id)."""
        if record.write_key is not None:
            where = artifact_checks.c.write_key == record.write_key
        elif record.id is not None:
            where = artifact_checks.c.artifact_id == record.id
        else:
            return {}
        statement = sa.select(artifact_checks).where(where).order_by(artifact_checks.c.id)
        with self._ready_engine().connect() as connection:
            rows = connection.execute(statement).mappings().all()
        latest = {}
        for row in rows:  # in insertion order: a later result replaces an earlier one
            values = {k: v for k, v in dict(row).items() if k != "id"}
            latest[row["check_name"]] = CheckRecord.model_validate(values)
        return latest

    def _fetch(self, statement: sa.Select[Any]) -> list[ArtifactRecord]:
        with self._ready_engine().connect() as connection:
            rows = connection.execute(statement).mappings().all()
        return [ArtifactRecord.model_validate(dict(row)) for row in rows]


def _dialect_insert(dialect: str) -> Any:
    """The INSERT that knows ON CONFLICT DO NOTHING for this database."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert
