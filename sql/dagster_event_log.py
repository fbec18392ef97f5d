"""The local Dagster instance's event log: Dagster's SQLite storage, minus two costs per query.

Dagster's `SqliteEventLogStorage` builds a new SQLAlchemy engine for every connection (so every
statement is compiled again: engines own the compiled-statement cache) and asks SQLite whether a
table exists on each dynamic-partition lookup, with yet another engine. A run writes about 140
entries for one partition and looks a dynamic partition up about 40 times per partition: profiled,
those two costs were a quarter of a ranged backfill run's time.

This class keeps one engine per database file for the life of the process and remembers the
tables it has found (a table, once created by a migration, does not go away). Nothing else
changes: connections are still opened and closed for each use (`NullPool`), which is what makes
SQLite checkpoint its write-ahead log into the `.db` file Dagster's webserver watches for live
run logs; the files, schema and migrations are Dagster's own.

dagster.yaml names it with no ``base_dir``: the folder is then Dagster's default,
``$DAGSTER_HOME/history/runs``, so DAGSTER_HOME must name the folder of that dagster.yaml, as
Dagster's CLI and webserver require anyway.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from dagster import DagsterInvariantViolationError, Field, StringSource
from dagster._config.config_schema import UserConfigSchema
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool


def pin_base_dir(config: Path) -> None:
    """Name the event log's folder (``<config's folder>/history/runs``) in the dagster.yaml at
    ``config``, for an instance opened with ``DagsterInstance.from_config(folder)`` by a process
    whose DAGSTER_HOME names another folder (a benchmark's or a test's sandbox)."""
    settings = yaml.safe_load(config.read_text()) or {}
    storage = settings.get("event_log_storage")
    if not storage or storage.get("class") != CachedSqliteEventLogStorage.__name__:
        return  # another storage (PostgreSQL, say) names its own place
    storage.setdefault("config", {})["base_dir"] = str(config.parent.resolve() / "history" / "runs")
    config.write_text(yaml.safe_dump(settings, sort_keys=False))


def default_base_dir() -> str:
    """Where Dagster's default storage keeps the event log: ``$DAGSTER_HOME/history/runs``."""
    home = os.environ.get("DAGSTER_HOME", "").strip()
    if not home:
        raise DagsterInvariantViolationError(
            "DAGSTER_HOME is not set: the event log of this dagster.yaml lives under it. Set "
            "DAGSTER_HOME to the folder holding dagster.yaml (make run and make ui do), or give "
            "event_log_storage.config.base_dir"
        )
    return os.path.join(os.path.abspath(home), "history", "runs")


class CachedSqliteEventLogStorage(SqliteEventLogStorage):
    """`SqliteEventLogStorage` with an engine per shard kept and found tables remembered."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._engines: dict[tuple[int, str], Engine] = {}
        self._tables: set[str] = set()
        super().__init__(base_dir, inst_data=inst_data)

    @classmethod
    def config_type(cls) -> UserConfigSchema:
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> CachedSqliteEventLogStorage:
        return cls(config_value.get("base_dir") or default_base_dir(), inst_data=inst_data)

    def _engine(self, shard: str) -> Engine:
        # Keyed by process too: a forked child builds its own rather than share its parent's.
        key = (os.getpid(), self.conn_string_for_shard(shard))
        engine = self._engines.get(key)
        if engine is None:
            engine = create_engine(
                key[1], poolclass=NullPool, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}
            )
            self._engines[key] = engine
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        # Dagster's `_connect`, with the engine kept instead of built and disposed each time.
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def has_table(self, table_name: str) -> bool:
        if table_name in self._tables:
            return True
        engine = self._engine(INDEX_SHARD_NAME)
        with engine.connect() as conn:
            found = bool(engine.dialect.has_table(conn, table_name))
        if found:
            self._tables.add(table_name)
        return found

    def dispose(self) -> None:
        super().dispose()
        for engine in self._engines.values():
            engine.dispose()
        self._engines.clear()
