"""Fault injection: the stores go down, hang, or break mid-write while the graph runs.

Each test ends the same way: after `trading-signals reconcile`, every artifact is in
PostgreSQL and the S3 server exactly once, and `verify` finds nothing amiss.
"""

from __future__ import annotations

import hashlib
from typing import Any

import dagster as dg
import pytest

from io_managers.artifact_store import ArtifactStore
from io_managers.reconcile import reconcile, verify
from io_managers.spool import SpoolEntry
from tests.conftest import TRADING_DAY
from tests.io_managers import examples
from tests.storage_faults.conftest import FaultyStores
from trading_assets.cli import main
from trading_assets.definitions import build_definitions
from trading_assets.environment import resources_from_environment
from trading_assets.partitions import partition_key_for
from trading_assets.sensors import spool_reconcile_sensor

pytestmark = pytest.mark.integration
PARTITION = str(partition_key_for("TSLA", TRADING_DAY))
GRAPH = {"market_data", "daily_chart", "weekly_chart", "llm_analysis", "trading_signal",
         "order", "portfolio", "mlflow_run"}


def _run(env: dict[str, str], instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions("symbol", ["TSLA"])
    job = build_definitions(resources_from_environment(env)).resolve_job_def(
        "trading_signals_job"
    )
    return job.execute_in_process(
        partition_key=partition_key_for("TSLA", TRADING_DAY), instance=instance,
        raise_on_error=False,
    )


def _materializations(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
    return {
        e.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
    }


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def _resources(env: dict[str, str]) -> dict[str, Any]:
    resources = resources_from_environment(env)
    return {name: resources[name] for name in ("artifacts", "artifact_db", "object_store", "spool")}


def _store(env: dict[str, str]) -> tuple[ArtifactStore, Any]:
    resources = _resources(env)
    return ArtifactStore(resources["artifact_db"], resources["object_store"]), resources["spool"]


def _assert_each_artifact_once(env: dict[str, str], run_id: str, assets: set[str]) -> None:
    store, spool = _store(env)
    rows = store.database.query(execution_id=run_id)
    assert sorted(r.step_name for r in rows) == sorted(assets)  # once each, no more
    for row in rows:
        data = store.read_payload(row)  # the object is there and intact
        assert hashlib.sha256(data).hexdigest() == row.content_hash
    assert spool.count() == 0
    report = verify(store, spool, TRADING_DAY, TRADING_DAY, deep=True)
    assert report.consistent, report.lines()


def _outage_stops_at_market_data(result: dg.ExecuteInProcessResult) -> None:
    """A spooled market_data fails its checks, so nothing downstream (no order) runs on it."""
    assert not result.success
    materialized = _materializations(result)
    assert set(materialized) == {"market_data"}
    meta = materialized["market_data"]
    assert meta["spooled"] is True and "artifact_id" not in meta
    assert "artifact_page" not in meta  # no row yet: the artifact browser has no page for it
    assert "could not be stored after retries" in meta["spool_reason"]
    checks = _checks(result)
    assert checks["market_data_stored"] is False
    assert checks["market_data_no_missing_days"] is False  # blocking: downstream never ran
    assert "order" not in materialized


def _spooled_run(
    faulty: FaultyStores, instance: dg.DagsterInstance
) -> tuple[dg.ExecuteInProcessResult, SpoolEntry]:
    """Run the graph with a store failing: it stops at market_data, which waits in the spool."""
    result = _run(faulty.env, instance)
    _outage_stops_at_market_data(result)
    (entry,) = _store(faulty.env)[1].entries()
    return result, entry


def _replayed_once(faulty: FaultyStores, run_id: str) -> None:
    """With the stores back, one replay puts the spooled market data in both, exactly once."""
    report = reconcile(*_store(faulty.env))
    assert report.complete and len(report.moved) == 1, report.lines()
    _assert_each_artifact_once(faulty.env, run_id, {"market_data"})


def test_database_down_spools_the_row_and_reconcile_stores_it_once(
    faulty: FaultyStores, instance: dg.DagsterInstance, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    faulty.database.down()
    result = _run(faulty.env, instance)
    _outage_stops_at_market_data(result)
    store, spool = _store(faulty.env)
    (entry,) = spool.entries()
    assert entry.object_stored and "database artifacts table at" in entry.reason
    assert "Connection refused" in entry.reason or "connection" in entry.reason.lower()
    # The object made it to S3 before the database failed: verify accounts for it as spooled.
    assert store.object_store.exists(entry.record.object_uri)

    faulty.database.forward()
    for name, value in faulty.env.items():
        monkeypatch.setenv(name, value)
    assert main(["reconcile"]) == 0
    out = capsys.readouterr().out
    assert "moved to the stores: 1" in out and "still in the spool: 0" in out
    assert f"market_data {PARTITION}" in out
    _assert_each_artifact_once(faulty.env, result.run_id, {"market_data"})
    assert main(["reconcile"]) == 0  # nothing left: a second replay moves nothing
    assert "moved to the stores: 0" in capsys.readouterr().out
    assert main(["verify", "--start", str(TRADING_DAY), "--end", str(TRADING_DAY)]) == 0
    assert "consistent" in capsys.readouterr().out


def test_object_store_down_spools_object_and_row(
    faulty: FaultyStores, instance: dg.DagsterInstance
) -> None:
    faulty.objects.down()
    result, entry = _spooled_run(faulty, instance)
    assert not entry.object_stored and "object store s3://" in entry.reason
    # No row without its object.
    assert _store(faulty.env)[0].database.query(execution_id=result.run_id) == []

    faulty.objects.forward()
    _replayed_once(faulty, result.run_id)


def test_both_stores_down_then_back_and_the_rerun_completes(
    faulty: FaultyStores, instance: dg.DagsterInstance
) -> None:
    faulty.database.down()
    faulty.objects.down()
    failed = _run(faulty.env, instance)
    _outage_stops_at_market_data(failed)
    (entry,) = _store(faulty.env)[1].entries()
    assert "object store" in entry.reason and "database" in entry.reason

    # The sensor waits while a store is down and asks for a replay once both answer.
    resources = _resources(faulty.env)
    with dg.build_sensor_context(instance=instance, resources=resources) as context:
        waiting = spool_reconcile_sensor(context)
    assert isinstance(waiting, dg.SkipReason) and "waiting for database" in waiting.skip_message
    faulty.database.forward()
    faulty.objects.forward()
    with dg.build_sensor_context(instance=instance, resources=_resources(faulty.env)) as context:
        requested = spool_reconcile_sensor(context)
        assert isinstance(requested, dg.SensorResult) and len(requested.run_requests or []) == 1
        # The next tick, same entries: no second run a minute later.
        context.update_cursor(requested.cursor)
        again = spool_reconcile_sensor(context)
    assert isinstance(again, dg.SkipReason) and "same entries" in (again.skip_message or "")
    job = build_definitions(resources_from_environment(faulty.env)).resolve_job_def(
        "reconcile_spool_job"
    )
    replay = job.execute_in_process(instance=instance)
    assert replay.success
    _assert_each_artifact_once(faulty.env, failed.run_id, {"market_data"})

    rerun = _run(faulty.env, instance)
    assert rerun.success
    _assert_each_artifact_once(faulty.env, rerun.run_id, GRAPH - {"mlflow_run"})


def test_a_store_that_hangs_times_out_and_the_artifact_is_spooled(
    faulty: FaultyStores, instance: dg.DagsterInstance
) -> None:
    faulty.objects.blackhole()
    result, entry = _spooled_run(faulty, instance)
    assert "did not finish within 2 s" in entry.reason

    # The abandoned requests go through once the path is back; the replay still stores once.
    faulty.objects.forward()
    _replayed_once(faulty, result.run_id)


def test_an_upload_cut_half_way_is_retried_and_stored_once(
    faulty: FaultyStores, instance: dg.DagsterInstance
) -> None:
    # The first S3 connection dies after 3 kB: in the middle of the market data's body.
    faulty.objects.cut(after_bytes=3_000)
    result = _run(faulty.env, instance)
    assert result.success
    assert faulty.objects.cuts == 1
    materialized = _materializations(result)
    assert [m["spooled"] for a, m in materialized.items() if a != "mlflow_run"] == [False] * 7
    _assert_each_artifact_once(faulty.env, result.run_id, GRAPH - {"mlflow_run"})


def test_a_database_write_cut_half_way_is_retried_and_inserted_once(
    faulty: FaultyStores,
) -> None:
    store, spool = _store(faulty.env)
    store.database.ping()  # a pooled connection through the proxy
    faulty.database.cut_open(after_bytes=60)  # the INSERT dies mid-statement on it
    prepared = store.prepare(
        examples.signal(TRADING_DAY), asset_name="trading_signal", symbol="TSLA",
        partition_key=PARTITION, partition_date=TRADING_DAY, job_name="trading_signals_job",
        run_id="cut-run", step_key="trading_signal",
    )
    record, created = store.save_once(prepared)
    assert faulty.database.cuts == 1 and created
    (row,) = store.database.query(execution_id="cut-run")
    assert row.id == record.id and row.write_key == prepared.record.write_key
    assert spool.count() == 0


def test_verify_with_the_database_down_says_so_in_one_line(
    faulty: FaultyStores, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in faulty.env.items():
        monkeypatch.setenv(name, value)
    faulty.database.down()
    assert main(["verify", "--start", str(TRADING_DAY), "--end", str(TRADING_DAY)]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: a store is unavailable: OperationalError:")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_database_that_hangs_times_out_and_the_row_is_spooled(
    faulty: FaultyStores, instance: dg.DagsterInstance
) -> None:
    faulty.database.blackhole()
    result, entry = _spooled_run(faulty, instance)
    assert entry.object_stored and "did not finish within 2 s" in entry.reason

    faulty.database.forward()
    _replayed_once(faulty, result.run_id)


class Crash(BaseException):
    """The reconcile process dies (kill -9): nothing after this point runs."""


def test_a_reconcile_killed_half_way_on_postgres_and_s3_makes_no_duplicates(
    faulty: FaultyStores, monkeypatch: pytest.MonkeyPatch
) -> None:
    from resources.database import ArtifactDatabase

    faulty.database.down()
    store, spool = _store(faulty.env)
    values = {
        "market_data": examples.market_data(TRADING_DAY),
        "order": examples.order(TRADING_DAY),
        "portfolio": examples.portfolio(TRADING_DAY),
    }
    for asset, value in values.items():
        written = store.write_or_spool(
            value, spool=spool, asset_name=asset, symbol="TSLA", partition_key=PARTITION,
            partition_date=TRADING_DAY, job_name="trading_signals_job", run_id="crash-run",
            step_key=asset,
        )
        assert written.spooled is not None
    faulty.database.forward()

    original = ArtifactDatabase.insert_once
    calls: list[int] = []

    def commit_then_die_on_the_second(self: ArtifactDatabase, record):  # noqa: ANN001, ANN202
        outcome = original(self, record)
        calls.append(outcome[0])
        if len(calls) == 2:
            raise Crash
        return outcome

    monkeypatch.setattr(ArtifactDatabase, "insert_once", commit_then_die_on_the_second)
    with pytest.raises(Crash):
        reconcile(*_store(faulty.env))
    monkeypatch.undo()

    report = reconcile(*_store(faulty.env))
    assert report.complete and len(report.already_stored) == 1 and len(report.moved) == 1
    _assert_each_artifact_once(faulty.env, "crash-run", set(values))
