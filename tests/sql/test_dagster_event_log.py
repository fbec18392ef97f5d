"""The local instance's event log (sql/dagster_event_log.py): Dagster's SQLite files and schema,
one engine per file for the process, and the webserver's live run logs still live."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.event_log import SqliteEventLogStorage

from sql.dagster_event_log import CachedSqliteEventLogStorage

REPO = Path(__file__).resolve().parents[2]


@dg.asset
def counted() -> int:
    return 1


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@pytest.fixture
def instance(home: Path) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance


def _storage(instance: dg.DagsterInstance) -> CachedSqliteEventLogStorage:
    storage = instance.event_log_storage
    storage = getattr(storage, "_storage", storage)  # Dagster's legacy wrapper around it
    storage = getattr(storage, "event_log_storage", storage)
    assert isinstance(storage, CachedSqliteEventLogStorage)
    return storage


def test_the_instance_of_dagster_yaml_writes_where_dagsters_own_storage_reads(
    home: Path, instance: dg.DagsterInstance
) -> None:
    result = dg.materialize([counted], instance=instance)
    assert result.success
    assert (home / "history" / "runs" / f"{result.run_id}.db").exists()
    # Dagster's own class over the same folder sees the run and the materialization.
    plain = SqliteEventLogStorage(str(home / "history" / "runs"))
    try:
        events = plain.get_logs_for_run(result.run_id)
        assert any(e.dagster_event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
                   for e in events)
        assert plain.get_latest_materialization_events([dg.AssetKey("counted")])[
            dg.AssetKey("counted")] is not None
    finally:
        plain.dispose()


def test_one_engine_per_database_file_however_many_runs_write(
    instance: dg.DagsterInstance,
) -> None:
    storage = _storage(instance)
    runs = [dg.materialize([counted], instance=instance).run_id for _ in range(3)]
    files = {url.rsplit("/", 1)[-1] for _, url in storage._engines}
    assert files == {"index.db"} | {f"{run}.db" for run in runs}
    assert len(storage._engines) == len(files)
    before = dict(storage._engines)
    dg.materialize([counted], instance=instance, tags={"again": "yes"})
    assert all(storage._engines[key] is engine for key, engine in before.items())


def test_a_table_is_looked_up_once_and_a_missing_one_each_time(
    instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = _storage(instance)
    asked: list[str] = []
    dialect = storage._engine("index").dialect
    original = type(dialect).has_table

    def counting(self, connection, table_name, *args, **kwargs):  # noqa: ANN001, ANN202
        asked.append(table_name)
        return original(self, connection, table_name, *args, **kwargs)

    monkeypatch.setattr(type(dialect), "has_table", counting)
    storage._tables.clear()
    assert storage.has_table("event_logs") and storage.has_table("event_logs")
    assert not storage.has_table("no_such_table") and not storage.has_table("no_such_table")
    assert asked == ["event_logs", "no_such_table", "no_such_table"]


def test_the_webserver_sees_a_run_worker_s_events_as_they_are_written(home: Path) -> None:
    """Two processes' storages over one folder, as `dagster dev` and a run worker: the
    webserver's watch (Dagster's file watcher on the run's .db) still fires per event."""
    base = str(home / "history" / "runs")
    webserver, worker = CachedSqliteEventLogStorage(base), CachedSqliteEventLogStorage(base)
    seen: list[str] = []
    arrived = threading.Event()

    def on_event(entry: dg.EventLogEntry, _cursor: str) -> None:
        seen.append(entry.user_message)
        if len(seen) == 3:
            arrived.set()

    try:
        run_id = "0123456789abcdef0123456789abcdef"
        worker.store_event(_entry(run_id, "first"))  # the run's file exists before the watch
        webserver.watch(run_id, None, on_event)
        for message in ("second", "third"):
            worker.store_event(_entry(run_id, message))
        assert arrived.wait(20), f"the watch saw only {seen}"
        assert seen == ["first", "second", "third"]
    finally:
        webserver.dispose()
        worker.dispose()


def _entry(run_id: str, message: str) -> dg.EventLogEntry:
    return dg.EventLogEntry(
        error_info=None, level="INFO", user_message=message, run_id=run_id,
        timestamp=0.0, step_key=None, job_name="job", dagster_event=None,
    )


def test_without_dagster_home_the_error_says_what_to_set(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DAGSTER_HOME")
    with pytest.raises(dg.DagsterInvariantViolationError, match="Set DAGSTER_HOME to the folder"):
        CachedSqliteEventLogStorage.from_config_value(None, {})
