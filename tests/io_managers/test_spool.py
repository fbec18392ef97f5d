"""The spool and its replay on the embedded stores (SQLite + local folder), no servers needed.

The same paths against PostgreSQL and the S3 server, with real outages, are in
tests/storage_faults/.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from io_managers import spool as spool_module
from io_managers.artifact_store import ArtifactStore, StoreUnavailableError
from io_managers.reconcile import reconcile, verify
from io_managers.resilience import WritePolicy
from io_managers.spool import ArtifactSpool, SpoolError
from resources.database import ArtifactDatabase
from resources.object_store import LocalObjectStore
from tests.io_managers import examples

KEY = "2025-01-02|TSLA"
FAST = WritePolicy(attempts=2, base_delay_seconds=0.01, max_delay_seconds=0.02, timeout_seconds=5)
VALUES = {
    "market_data": examples.market_data,
    "daily_chart": examples.chart,
    "llm_analysis": examples.llm,
    "trading_signal": examples.signal,
    "order": examples.order,
    "portfolio": examples.portfolio,
}


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def warning(self, msg: str) -> None:
        self.lines.append(msg)


class _UnreachableObjects(LocalObjectStore):
    """The configured ``objects`` folder while it is unreachable (puts hit a file, not a folder):
    the same store, so its spool entries are meant for the stores ``_store`` builds."""

    def describe(self) -> str:
        return f"local folder {(Path(self.root).parent / 'objects').resolve()}"


def _store(tmp_path: Path, objects: str = "objects", log: Log | None = None) -> ArtifactStore:
    kind = LocalObjectStore if objects == "objects" else _UnreachableObjects
    return ArtifactStore(
        ArtifactDatabase(url=f"sqlite:///{tmp_path}/a.db"),
        kind(root=str(tmp_path / objects)),
        policy=FAST,
        log=log,
    )


def _write(store: ArtifactStore, spool: ArtifactSpool | None, asset: str, run_id: str = "run-1"):  # noqa: ANN202
    return store.write_or_spool(
        VALUES[asset](), spool=spool, asset_name=asset, symbol="TSLA", partition_key=KEY,
        partition_date=examples.DAY, job_name="trading_signals_job", run_id=run_id,
        step_key=asset,
    )


def _broken_object_store(tmp_path: Path) -> str:
    """An object root that cannot hold objects: a file where the folder should be."""
    (tmp_path / "blocked").write_text("not a folder")
    return "blocked"


def test_an_object_store_that_stays_down_sends_the_artifact_to_the_spool(tmp_path: Path) -> None:
    log = Log()
    spool = ArtifactSpool(directory=str(tmp_path / "spool"))
    store = _store(tmp_path, _broken_object_store(tmp_path), log)
    result = _write(store, spool, "trading_signal")
    assert result.record.id is None and result.spooled is not None
    assert not result.spooled.object_stored
    assert "object store local folder" in result.spooled.reason
    # Every attempt was logged with its context and target, then the spooling.
    assert sum("attempt 1/2 failed" in line for line in log.lines) == 1
    assert "trading_signal, partition 2025-01-02|TSLA, run run-1" in log.lines[0]
    assert "went to local spool" in log.lines[-1] and "trading-signals reconcile" in log.lines[-1]
    # No row without its object.
    assert store.database.query() == []
    (entry,) = spool.entries()
    assert spool.payload(entry) and entry.record.step_name == "trading_signal"


def test_without_a_spool_a_store_outage_fails_the_write(tmp_path: Path) -> None:
    store = _store(tmp_path, _broken_object_store(tmp_path))
    with pytest.raises(StoreUnavailableError, match="could not be stored after retries"):
        _write(store, None, "order")


def test_reconcile_moves_every_entry_once_and_reports_it(tmp_path: Path) -> None:
    spool = ArtifactSpool(directory=str(tmp_path / "spool"))
    down = _store(tmp_path, _broken_object_store(tmp_path))
    for asset in VALUES:
        assert _write(down, spool, asset).spooled is not None
    assert spool.count() == len(VALUES)

    up = _store(tmp_path)
    report = reconcile(up, spool)
    assert report.complete and len(report.moved) == len(VALUES) and not report.already_stored
    rows = up.database.query()
    assert sorted(r.step_name for r in rows) == sorted(VALUES)
    for row in rows:
        assert up.read_payload(row)  # object there, hash intact
        assert row.object_uri.startswith((tmp_path / "objects").as_uri())
    assert spool.count() == 0
    again = reconcile(up, spool)
    assert again.moved == [] and again.complete
    assert len(up.database.query()) == len(VALUES)
    assert verify(up, spool, examples.DAY, examples.DAY).consistent


class Crash(BaseException):
    """The process dies (kill -9, power loss): nothing after this point runs."""


def test_a_reconcile_that_crashes_half_way_and_runs_again_makes_no_duplicates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = ArtifactSpool(directory=str(tmp_path / "spool"))
    down = _store(tmp_path, _broken_object_store(tmp_path))
    for asset in VALUES:
        _write(down, spool, asset)
    up = _store(tmp_path)

    inserted: list[int] = []
    original = ArtifactDatabase.insert_once

    def insert_then_crash_on_the_third(self: ArtifactDatabase, record):  # noqa: ANN001, ANN202
        result = original(self, record)  # committed...
        inserted.append(result[0])
        if len(inserted) == 3:
            raise Crash  # ...and the process dies before the entry leaves the spool
        return result

    monkeypatch.setattr(ArtifactDatabase, "insert_once", insert_then_crash_on_the_third)
    with pytest.raises(Crash):
        reconcile(up, spool)
    monkeypatch.undo()
    assert spool.count() == len(VALUES) - 2  # the third is committed but still spooled

    report = reconcile(up, spool)
    assert report.complete
    assert len(report.already_stored) == 1 and len(report.moved) == len(VALUES) - 3
    rows = up.database.query()
    assert len(rows) == len(VALUES)  # exactly once each
    assert len({r.write_key for r in rows}) == len(VALUES)


def test_a_write_retried_after_it_committed_keeps_one_row(tmp_path: Path) -> None:
    store = _store(tmp_path)
    prepared = store.prepare(
        examples.order(), asset_name="order", symbol="TSLA", partition_key=KEY,
        partition_date=examples.DAY, job_name="j", run_id="r", step_key="order",
    )
    first, created = store.save_once(prepared)
    second, created_again = store.save_once(prepared)  # e.g. the first timed out but committed
    assert created and not created_again and first.id == second.id
    assert len(store.database.query()) == 1


def test_a_spool_entry_is_whole_or_absent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spool = ArtifactSpool(directory=str(tmp_path / "spool"))
    down = _store(tmp_path, _broken_object_store(tmp_path))
    real_write = spool_module._write_synced

    def disk_full_on_the_row(path: Path, data: bytes) -> None:
        if path.name == spool_module.ENTRY_FILE:
            raise OSError(28, "No space left on device")
        real_write(path, data)

    monkeypatch.setattr(spool_module, "_write_synced", disk_full_on_the_row)
    with pytest.raises(SpoolError, match="could be stored neither in the stores nor on local disk"
                       ) as failure:
        _write(down, spool, "order")
    assert spool.entries() == []  # the half-written entry never became pending
    assert list((tmp_path / "spool" / "incoming").iterdir()) == []  # and was cleared away
    message = str(failure.value)
    assert "No space left on device" in message and " MB free on " in message
    assert "\n" not in message


def test_a_damaged_entry_is_reported_and_kept(tmp_path: Path) -> None:
    spool = ArtifactSpool(directory=str(tmp_path / "spool"))
    _write(_store(tmp_path, _broken_object_store(tmp_path)), spool, "order")
    (entry,) = spool.entries()
    payload = tmp_path / "spool" / "pending" / entry.write_key / spool_module.PAYLOAD_FILE
    payload.write_bytes(b"tampered")
    report = reconcile(_store(tmp_path), spool)
    assert not report.complete and len(report.damaged) == 1 and "damaged" in report.damaged[0]
    assert spool.count() == 1  # left for a person, never deleted


def test_verify_lists_missing_objects_orphans_and_spooled_artifacts(tmp_path: Path) -> None:
    spool = ArtifactSpool(directory=str(tmp_path / "spool"))
    store = _store(tmp_path)
    kept = _write(store, spool, "order").record
    lost = _write(store, spool, "portfolio").record
    Path(lost.object_uri.removeprefix("file://")).unlink()
    orphan = tmp_path / "objects" / "order" / "TSLA" / "2025-01-02" / "stray.json"
    orphan.write_text(json.dumps({"stray": True}))
    _write(_store(tmp_path, _broken_object_store(tmp_path)), spool, "trading_signal")

    report = verify(store, spool, examples.DAY, examples.DAY)
    assert not report.consistent and report.rows == 2
    assert [line.split()[0] for line in report.missing_objects] == [f"#{lost.id}"]
    assert report.orphan_objects == [f"{orphan.as_uri()} ({orphan.stat().st_size} bytes)"]
    assert len(report.spooled) == 1 and "trading_signal" in report.spooled[0]
    assert kept.object_uri not in " ".join(report.missing_objects)
    # Out of range: nothing to report.
    later = verify(store, ArtifactSpool(directory=str(tmp_path / "none")),
                   examples.DAY + dt.timedelta(days=1), examples.DAY + dt.timedelta(days=5))
    assert later.consistent and later.rows == 0


def test_a_replayed_older_portfolio_does_not_become_the_latest(tmp_path: Path) -> None:
    spool = ArtifactSpool(directory=str(tmp_path / "spool"))
    older = _write(_store(tmp_path, _broken_object_store(tmp_path)), spool, "portfolio", "old")
    assert older.spooled is not None
    up = _store(tmp_path)
    newer = examples.portfolio().model_copy(update={"cash": 1.0})
    stored = up.write(newer, asset_name="portfolio", symbol="TSLA", partition_key=KEY,
                      partition_date=examples.DAY, job_name="j", run_id="new", step_key="p")
    assert reconcile(up, spool).complete
    # The replayed row has the higher id, but it was produced first: the newer stays latest.
    latest = up.database.latest("portfolio", KEY)
    assert latest is not None and latest.id == stored.id and latest.execution_id == "new"
    assert up.load_latest("portfolio", KEY) == newer
    (newest,) = up.database.newest_per_partition("portfolio")
    assert newest.id == stored.id
    assert up.database.query(step_name="portfolio")[0].id == stored.id


def test_a_spool_entry_for_other_stores_is_not_replayed_here(tmp_path: Path) -> None:
    spool = ArtifactSpool(directory=str(tmp_path / "spool"))
    elsewhere = ArtifactStore(
        ArtifactDatabase(url=f"sqlite:///{tmp_path}/other.db"),
        _UnreachableObjects(root=str(tmp_path / _broken_object_store(tmp_path))),
        policy=FAST,
    )
    entry_target = _write(elsewhere, spool, "order").spooled
    assert entry_target is not None and "other.db" in (entry_target.target or "")
    here = _store(tmp_path)
    report = reconcile(here, spool)
    assert not report.complete and report.moved == [] and spool.count() == 1
    (line,) = report.other_stores
    assert f"was meant for {entry_target.target}" in line and "DATABASE_URL" in line
    assert here.database.query() == []
    # It does not hold back this configuration's partition, and is listed apart.
    assert spool.pending_for(KEY, here.target()) == []
    assert spool.elsewhere_for(KEY, here.target()) == [entry_target]


def test_verify_compares_broker_orders_with_order_artifacts_both_ways(tmp_path: Path) -> None:
    from io_managers.reconcile import BrokerOrders

    store = _store(tmp_path)
    other_day = examples.DAY + dt.timedelta(days=1)
    placed = examples.order().model_copy(update={"mode": "simulate"})
    store.write(placed, asset_name="order", symbol="TSLA", partition_key=KEY,
                partition_date=examples.DAY, job_name="j", run_id="r", step_key="order")
    spool = ArtifactSpool(directory=str(tmp_path / "spool"))
    # The broker has an order on the next day (killed before its artifact), none on DAY.
    broker = BrokerOrders("paper simulator", "simulate",
                          {("TSLA", other_day): "ts:TSLA:2025-01-03:BUY (BUY 187, filled)"})
    report = verify(store, spool, examples.DAY, other_day, broker=broker)
    assert not report.consistent
    (missing,) = report.broker_without_artifact
    assert missing.startswith("TSLA 2025-01-03: ts:TSLA:2025-01-03:BUY") and "none" in missing
    (unbacked,) = report.artifact_without_broker
    assert "says placed" in unbacked and "TSLA 2025-01-02" in unbacked
    assert any("broker orders without an order artifact" in line for line in report.lines())
    matched = BrokerOrders("paper simulator", "simulate", {("TSLA", examples.DAY): "ts:TSLA"})
    assert verify(store, spool, examples.DAY, other_day, broker=matched).consistent
