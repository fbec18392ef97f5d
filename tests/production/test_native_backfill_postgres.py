"""A native backfill on the production instance, as the compose stack runs one minus Docker:
`dagster dev` (webserver and daemon) with docker/dagster.yaml, unchanged, as its instance on a
throwaway PostgreSQL database; the backfill launched through GraphQL (tests/native_backfill.py).
The backfill daemon submits one ranged run per symbol to the QueuedRunCoordinator, the run
queue daemon starts them, and PostgreSQL's event log records every asset partition. The
artifacts go to a PostgreSQL database of their own, offline defaults otherwise (synthetic bars,
offline analyst, paper simulator).

Nothing in docker/dagster.yaml needs Docker (the DefaultRunLauncher starts runs as processes;
the storage reads DAGSTER_POSTGRES_*). The workspace does: docker/workspace.yaml names the
`code` service's gRPC server, so the harness loads the code location from the package instead.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from dataclasses import dataclass

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

from bench.pipeline import trading_days
from sql.migrate import upgrade
from tests.native_backfill import BackfillOutcome, run_native_backfill
from tests.production.conftest import DOCKER_DIR, dagster_postgres_env
from tests.servers import throwaway_postgres_database
from trading_assets.tags import RANGE_END_TAG, RANGE_START_TAG

# `dagster dev` servers and their daemons: run after the parallel suite, alone (Makefile).
pytestmark = [pytest.mark.integration, pytest.mark.serial]

SYMBOLS = ("TSLA", "META")
DAYS = trading_days(3, last=dt.date(2025, 3, 25))
BACKFILL_TIMEOUT_S = 420.0
BACKFILL_TAG = "dagster/backfill"
# A queued run's life: submitted to the queue (by the backfill daemon, through the run
# coordinator), taken off it by the run queue daemon, started by its run worker.
QUEUED_RUN_EVENTS = (
    dg.DagsterEventType.RUN_ENQUEUED,
    dg.DagsterEventType.RUN_STARTING,
    dg.DagsterEventType.RUN_START,
    dg.DagsterEventType.RUN_SUCCESS,
)


@dataclass(frozen=True)
class Backfill:
    """What the backfill left behind, read once the server has stopped."""

    outcome: BackfillOutcome
    seconds: float  # server start, backfill, server stop
    instance_parts: dict[str, type]  # run_storage, event_log_storage, run_coordinator, ...
    runs: list[dg.DagsterRun]  # the instance's records of the backfill's runs
    run_events: dict[str, list[dg.DagsterEventType]]  # run id -> its run events, oldest first
    materialized: dict[str, set[str]]  # asset -> its materialized partitions
    orders: list[sa.Row]  # the order artifacts (symbol, partition_date), oldest first


@pytest.fixture(scope="module")
def backfill(tmp_path_factory: pytest.TempPathFactory) -> Backfill:
    root = tmp_path_factory.mktemp("postgres_backfill")
    home = root / "dagster_home"
    sandbox = {"DAGSTER_HOME": str(home), "TRADING_DATA_DIR": str(root / "data")}
    with (throwaway_postgres_database("dagster_test") as dagster_url,
          throwaway_postgres_database("artifacts_test") as artifacts_url):
        upgrade(artifacts_url)  # as compose's init service runs `trading-signals db upgrade`
        instance_env = dagster_postgres_env(dagster_url)
        started = time.monotonic()
        outcome = run_native_backfill(
            sandbox, SYMBOLS, DAYS, {**instance_env, "DATABASE_URL": artifacts_url},
            timeout=BACKFILL_TIMEOUT_S, dagster_yaml=DOCKER_DIR / "dagster.yaml",
        )
        seconds = time.monotonic() - started
        print(f"\npostgres backfill: {outcome.status} in {seconds:.0f} s ({len(outcome.runs)} "
              f"runs; launch -> first run start {outcome.seconds_to_first_run_start or 0:.0f} s, "
              f"-> last run end {outcome.seconds_to_last_run_end or 0:.0f} s, -> "
              f"{outcome.status} {outcome.seconds_to_status:.0f} s)")
        with pytest.MonkeyPatch.context() as env:
            for name, value in instance_env.items():
                env.setenv(name, value)  # what docker/dagster.yaml reads, here as in the server
            with dg.DagsterInstance.from_config(str(home)) as instance:
                parts = {
                    "run_storage": type(instance.run_storage),
                    "event_log_storage": type(instance.event_log_storage),
                    "run_coordinator": type(instance.run_coordinator),
                    "run_launcher": type(instance.run_launcher),
                }
                runs = [run for r in outcome.runs
                        if (run := instance.get_run_by_id(r.run_id)) is not None]
                run_events = {
                    run.run_id: [e.dagster_event_type for e in instance.all_logs(run.run_id)
                                 if e.dagster_event_type in QUEUED_RUN_EVENTS]
                    for run in runs
                }
                materialized = {
                    asset: set(instance.get_materialized_partitions(
                        dg.AssetKey(asset.split("/"))))
                    for asset in outcome.assets
                }
        engine = sa.create_engine(artifacts_url)
        try:
            with engine.connect() as connection:
                orders = list(connection.execute(sa.text(
                    "SELECT symbol, partition_date FROM artifacts WHERE step_name = 'order' "
                    "ORDER BY created_at, id")))
        finally:
            engine.dispose()  # before the database is dropped
    return Backfill(outcome, seconds, parts, runs, run_events, materialized, orders)


def test_the_backfill_completes_on_the_postgres_instance_of_docker_dagster_yaml(
    backfill: Backfill,
) -> None:
    outcome = backfill.outcome
    assert outcome.status in ("COMPLETED", "COMPLETED_SUCCESS"), (outcome.error, outcome.runs)
    assert backfill.instance_parts == {
        "run_storage": PostgresRunStorage,
        "event_log_storage": PostgresEventLogStorage,
        "run_coordinator": dg.QueuedRunCoordinator,
        "run_launcher": dg.DefaultRunLauncher,
    }
    # The server's runs are in that database: the server used it, not a SQLite home of its own.
    assert outcome.runs and len(backfill.runs) == len(outcome.runs)


def test_one_queued_run_per_symbol_started_by_the_daemon(backfill: Backfill) -> None:
    outcome = backfill.outcome
    assert len(backfill.runs) == len(SYMBOLS), [r.tags for r in backfill.runs]
    ranges = set()
    for run in backfill.runs:
        assert run.status == dg.DagsterRunStatus.SUCCESS, run.run_id
        assert run.tags[BACKFILL_TAG] == outcome.backfill_id
        ranges.add((run.tags[RANGE_START_TAG], run.tags[RANGE_END_TAG]))
        # Enqueued first (a run launched directly would have no RUN_ENQUEUED), then started by
        # the run queue daemon (RUN_STARTING) and its worker; once each, so never retried.
        assert backfill.run_events[run.run_id] == list(QUEUED_RUN_EVENTS), run.run_id
    first, last = DAYS[0].isoformat(), DAYS[-1].isoformat()
    assert ranges == {(f"{first}|{s}", f"{last}|{s}") for s in SYMBOLS}


def test_every_asset_partition_is_materialized_in_the_postgres_event_log(
    backfill: Backfill,
) -> None:
    targeted = set(backfill.outcome.partitions)
    assert len(targeted) == len(SYMBOLS) * len(DAYS)
    assert {"market_data", "order", "portfolio", "mlflow_run"} <= backfill.materialized.keys()
    for asset, partitions in backfill.materialized.items():
        assert targeted <= partitions, f"{asset}: not materialized {sorted(targeted - partitions)}"


def test_each_symbols_orders_are_created_in_date_order(backfill: Backfill) -> None:
    days: dict[str, list[str]] = defaultdict(list)
    for symbol, day in backfill.orders:
        days[symbol].append(str(day))
    assert days == {s: [d.isoformat() for d in DAYS] for s in SYMBOLS}

