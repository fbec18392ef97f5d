"""`trading-signals`: run the graph, browse artifacts, show the effective configuration."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.utils import make_new_run_id
from sqlalchemy import exc as sa_exc

from io_managers.artifact_store import StoreUnavailableError
from io_managers.spool import SpoolError
from resources.broker import BrokerConfigError
from resources.llm import LlmConfigError
from resources.object_store import ObjectStoreError
from sql.schema import ARTIFACT_TYPES
from trading_assets import run_recovery
from trading_assets.calendar import check_closed_session, latest_completed_session
from trading_assets.environment import SettingError, data_dir, resources_from_environment
from trading_assets.market_data.folder_source import MarketDataError
from trading_assets.partitions import (
    DEFAULT_SYMBOLS,
    SYMBOL_DIMENSION,
    SymbolError,
    first_partition_day,
    parse_symbols,
    partition_key_for,
    symbol_and_date,
)
from trading_assets.run_report import first_failure, quiet_run_config
from trading_assets.tags import PREFLIGHT_TAG

DAGSTER_UI = "http://127.0.0.1:3000"
DEFAULT_POOL_WAIT_SECONDS = 120.0


class UsageError(Exception):
    """Bad input on the command line or in the environment; printed without a traceback."""


class PreflightError(Exception):
    """A service the run needs does not answer; nothing was run."""


def preflight(resources: dict[str, Any], *, broker_used: bool = True) -> None:
    """The doctor's checks of the services this run uses (trading_assets/preflight.py), before
    anything runs: PreflightError naming each required one that is down."""
    from trading_assets.preflight import check_services, failure_message

    resolved = {name: _resolved(resource) for name, resource in resources.items()}
    with dg.DagsterInstance.get() as instance:
        down, reported = check_services(resolved, instance, broker_used=broker_used)
    for finding in reported:
        print(f"warning: {finding.service}: {finding.detail}", file=sys.stderr)
    if down:
        raise PreflightError(failure_message(down))


_RESOURCES = contextlib.ExitStack()


def _resolved(resource: dg.ConfigurableResource) -> Any:
    """The resource with its EnvVar fields resolved, for use outside a Dagster run.

    Torn down (engines disposed) when the command ends.
    """
    return _RESOURCES.enter_context(dg.build_resources({"it": resource})).it


def _artifact_db() -> Any:
    return _resolved(resources_from_environment()["artifact_db"])


_HOME_READY = ".trading-signals-initialised"


def ensure_dagster_home() -> Path:
    """Use DAGSTER_HOME, or the project's data/dagster_home, so `run` and `make ui` share it.

    The first command in a fresh home creates its dagster.yaml and the instance's storage under
    a file lock: commands started together would otherwise all run Dagster's SQLite migrations
    at once (``table alembic_version already exists``, or a schedules.db left with two heads).
    """
    from sql.locks import initialisation_lock

    home = Path(os.environ.get("DAGSTER_HOME") or data_dir() / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    template, config = Path("dagster.yaml"), home / "dagster.yaml"
    if (home / _HOME_READY).exists() and (config.exists() or not template.exists()):
        return home
    with initialisation_lock(home / ".initialising"):
        if not config.exists() and template.exists():
            # Whole or absent: `make ui` may read it while this copies.
            partial = home / ".dagster.yaml.partial"
            shutil.copyfile(template, partial)
            os.replace(partial, config)
        if not (home / _HOME_READY).exists():
            with dg.DagsterInstance.get() as instance:
                # Each storage creates (and migrates) its databases when first touched: now.
                for storage in ("run_storage", "event_log_storage", "schedule_storage"):
                    getattr(instance, storage)
            (home / _HOME_READY).write_text("the instance storage was initialised\n")
    return home


def _check_in_partitions(flag: str, day: dt.date) -> None:
    """A day before the first `date` partition has no partition to materialize."""
    first = first_partition_day()
    if day < first:
        raise UsageError(
            f"{flag} {day} is before the first date partition {first}: pick a later day, or set "
            f"TRADING_START_DATE={day} (or earlier) for both this command and the Dagster UI"
        )


def resolve_day(raw: str | None, now: dt.datetime) -> dt.date:
    if raw is None:
        return latest_completed_session(now)
    day = _parse_day("--date", raw)
    if day > now.date():
        raise UsageError(f"--date {raw} is in the future: pick a trading day that has closed")
    _check_in_partitions("--date", day)
    try:
        check_closed_session(day, now)
    except ValueError as exc:
        raise UsageError(f"--date {raw}: {exc}") from exc
    return day


def _symbols(raw: str | None) -> list[str]:
    text = raw if raw is not None else os.environ.get("STOCK_SYMBOLS") or DEFAULT_SYMBOLS
    source = "--symbols" if raw is not None else "STOCK_SYMBOLS"
    try:
        return parse_symbols(text)
    except SymbolError as exc:
        raise UsageError(f"{source}: {exc}") from exc


def register_symbols(instance: dg.DagsterInstance, symbols: Sequence[str]) -> list[str]:
    known = set(instance.get_dynamic_partitions(SYMBOL_DIMENSION))
    new = [s for s in symbols if s not in known]
    if new:
        instance.add_dynamic_partitions(SYMBOL_DIMENSION, new)
    return new


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1024:.1f} KiB" if n >= 1024 else f"{n} B"


def cmd_run(args: argparse.Namespace) -> int:
    from trading_assets.backfill import freeze_loaded_heap

    # Frozen before and after loading the code location: the collector then never walks the
    # libraries again during the run (it spent about a second of every `run` doing so).
    freeze_loaded_heap()
    from trading_assets.definitions import load_job

    symbols = _symbols(args.symbols)
    day = resolve_day(args.date, dt.datetime.now(dt.UTC))
    home = ensure_dagster_home()
    # Validated once, every setting (WORKFLOW_SCHEDULE included): SettingError before any run.
    resources = resources_from_environment()
    preflight(resources)
    db = _resolved(resources["artifact_db"])
    job = load_job(resources)
    freeze_loaded_heap()
    bound = _pool_wait_seconds()
    with dg.DagsterInstance.get() as instance:
        added = register_symbols(instance, symbols)
        if added:
            print(f"registered symbol partitions: {', '.join(added)}")
        print(f"running {job.name} for {day} on {', '.join(symbols)} (Dagster home {home})")
        failures = 0
        for symbol in symbols:
            # A run whose process died keeps its pool slots, and the broker pool has one.
            _print_reaped(run_recovery.reap(instance))
            run_id = make_new_run_id()
            watch = run_recovery.PoolWatch(instance, run_id, bound, on_reaped=_print_reaped)
            try:
                with watch.watching():
                    result = job.execute_in_process(
                        partition_key=partition_key_for(symbol, day),
                        instance=instance,
                        run_id=run_id,
                        tags={**run_recovery.process_tags(), PREFLIGHT_TAG: "passed"},
                        raise_on_error=False,
                        # The summary below says what happened; the full event log is in `make ui`.
                        run_config=quiet_run_config(args.verbose),
                    )
            except KeyboardInterrupt:
                print(f"error: interrupted; run {run_id} stopped", file=sys.stderr)
                return 130
            if isinstance(watch.error, run_recovery.PoolWaitTimeout):
                print(f"error: {symbol} {day} run {run_id}: {watch.error}", file=sys.stderr)
                return 4
            if isinstance(watch.error, run_recovery.RunInterrupted) or _interrupted(result):
                print(f"error: {symbol} {day} run {run_id}: interrupted (SIGINT/SIGTERM); the "
                      "run is marked failed", file=sys.stderr)
                return 130
            failures += _print_partition(symbol, day, result, db)
    print(f"\nartifacts: {db.masked_url()}   browse: make web (http://127.0.0.1:8000), "
          f"lineage: make ui ({DAGSTER_UI})")
    return 1 if failures else 0


def _pool_wait_seconds() -> float:
    """POOL_WAIT_SECONDS: how long a run may wait for a pool slot before it gives up."""
    raw = os.environ.get("POOL_WAIT_SECONDS", "").strip()
    if not raw:
        return DEFAULT_POOL_WAIT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise UsageError(f"POOL_WAIT_SECONDS={raw!r} is not a number of seconds above 0, e.g. 120")
    return value


def _print_reaped(report: Any) -> None:
    for run_id in report.reaped:
        print(f"reaped run {run_id}: its process is gone; marked failed, pool slots freed",
              flush=True)
    for run_id in report.freed_for:
        print(f"freed the pool slots still held by ended run {run_id}", flush=True)


def _interrupted(result: Any) -> bool:
    """A signal inside a step: Dagster ended the step and the run as interrupted."""
    interrupts = ("DagsterExecutionInterruptedError", "KeyboardInterrupt")
    return any(
        event.is_step_failure
        and event.step_failure_data
        and event.step_failure_data.error
        and event.step_failure_data.error.cls_name in interrupts
        for event in result.all_events
    )


def _print_partition(symbol: str, day: dt.date, result: Any, db: Any) -> int:
    status = "ok" if result.success else "FAILED"
    print(f"\n== {symbol} {day}  run {result.run_id}  {status}")
    rows = sorted(db.query(execution_id=result.run_id, limit=50), key=lambda r: r.id)
    for row in rows:
        print(
            f"  #{row.id:<6} {row.step_name:<15} {row.type:<12} {_size(row.size_bytes):>10}  "
            f"{row.object_uri}"
        )
    materialized = {
        e.asset_key.to_user_string() for e in result.get_asset_materialization_events()
    }
    # What did get stored is worth printing even when a later step (MLflow, say) failed.
    if "trading_signal" in materialized:
        signal = result.output_for_node("trading_signal")
        print(
            f"  signal: {signal.action.value} {signal.confidence_level.value} "
            f"({signal.confidence_score:g}) by {signal.provider}/{signal.model_name}"
        )
    if "order" in materialized:
        decision = result.output_for_node("order")
        print(f"  order:  {'placed' if decision.placed else 'none'}: {decision.reason}")
    if result.success:
        return 0
    print(f"  FAILED: {first_failure(result)}")
    print(f"  full log: the run's page, {DAGSTER_UI}/runs/{result.run_id} (make ui), or --verbose")
    return 1


def _parse_day(flag: str, raw: str) -> dt.date:
    """A command-line day; a one-line UsageError naming the flag if it is not YYYY-MM-DD."""
    try:
        return dt.date.fromisoformat(raw)
    except ValueError as exc:
        raise UsageError(f"{flag} {raw!r} is not a date: use YYYY-MM-DD, e.g. 2025-06-02") from exc


def cmd_backfill(args: argparse.Namespace) -> int:
    from trading_assets.backfill import new_backfill_id, plan, run_backfill

    symbols = _symbols(args.symbols)
    start, end = _parse_day("--start", args.start), _parse_day("--end", args.end)
    now = dt.datetime.now(dt.UTC)
    if start > end:
        raise UsageError(f"--start {start} is after --end {end}")
    _check_in_partitions("--start", start)
    latest = latest_completed_session(now)
    if end > latest:
        raise UsageError(
            f"--end {end} has not closed yet: the latest closed trading day is {latest}"
        )
    work = plan(symbols, start, end)
    total = sum(len(days) for _, days in work)
    if total == 0:
        raise UsageError(f"there is no NYSE trading day between {start} and {end}")
    days = len(work[0][1])
    resources = resources_from_environment()
    llm = _resolved(resources["llm"])
    print(
        f"backfill: {total} partitions ({len(symbols)} symbols x {days} trading days, "
        f"{start} to {end})"
    )
    print(f"analyst: {llm.describe()}; estimated LLM cost: {_cost_estimate(llm, total)}")
    print("orders: a backfill never reaches a broker (the simulator may still simulate)")
    asked = not args.yes and sys.stdin.isatty()
    if asked and input("launch? [y/N] ").strip().lower() not in ("y", "yes"):
        print("not launched")
        return 1
    home = ensure_dagster_home()
    preflight(resources, broker_used=False)
    with dg.DagsterInstance.get() as instance:
        register_symbols(instance, symbols)
        _print_reaped(run_recovery.reap(instance))
    backfill_id = new_backfill_id()
    print(f"backfill {backfill_id}: {args.workers} worker(s), Dagster home {home}")

    def progress(done: int, total: int, outcome: Any) -> None:
        status = "ok" if outcome.success else "FAILED"
        print(
            f"[{done:>{len(str(total))}}/{total}] {outcome.symbol:<6} {outcome.day} "
            f"{status:<6} {outcome.summary}",
            flush=True,
        )

    outcomes = run_backfill(work, backfill_id, args.workers, progress)
    failed = [o for o in outcomes if not o.success]
    print(
        f"done: {len(outcomes) - len(failed)} succeeded, {len(failed)} failed "
        f"(tag {backfill_id} in the Dagster UI)"
    )
    return 1 if failed else 0


def cmd_scorecard(args: argparse.Namespace) -> int:
    from trading_assets.backfill import freeze_loaded_heap

    freeze_loaded_heap()
    from trading_assets.definitions import load_definitions
    from trading_assets.evaluation.assets import SCORECARD, ScorecardConfig
    from trading_assets.evaluation.report import format_scorecard
    from trading_assets.sensors import signals_due

    symbols = _symbols(args.symbols) if args.symbols else []
    start = _parse_day("--start", args.start) if args.start else None
    end = _parse_day("--end", args.end) if args.end else None
    if start and end and start > end:
        raise UsageError(f"--start {start} is after --end {end}")
    ensure_dagster_home()
    resources = resources_from_environment()
    db = _resolved(resources["artifact_db"])
    evaluation = _resolved(resources["evaluation"])
    definitions = load_definitions(resources)
    freeze_loaded_heap()
    quiet = quiet_run_config()
    with dg.DagsterInstance.get() as instance:
        if not args.no_update:
            # What signal_outcome_sensor does under the daemon: score every signal whose horizon
            # has closed since it was stored, so the scorecard is current without `make ui`.
            due = [
                key
                for key, _ in signals_due(
                    db, latest_closed=latest_completed_session(dt.datetime.now(dt.UTC)),
                    exit_after_sessions=evaluation.exit_after_sessions,
                )
                if _in_scope(key, symbols, start, end)
            ]
            if due:
                print(f"scoring {len(due)} signals whose horizon has closed ...", flush=True)
            job = definitions.resolve_job_def("signal_outcome_job")
            for key in due:
                result = job.execute_in_process(
                    partition_key=key, instance=instance, raise_on_error=False, run_config=quiet
                )
                if not result.success:
                    print(f"  {key}: scoring failed: {first_failure(result)}", file=sys.stderr)
        config = ScorecardConfig(
            symbols=symbols,
            start=start.isoformat() if start else None,
            end=end.isoformat() if end else None,
        )
        result = definitions.resolve_job_def("scorecard_job").execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config={**quiet, "ops": {"scorecard_assets": {"config": config.model_dump()}}},
        )
    if not result.success:
        raise UsageError(f"the scorecard run {result.run_id} failed: {first_failure(result)}")
    card = result.output_for_node("scorecard_assets", SCORECARD)
    print(format_scorecard(card, by=args.by))
    plots = [
        r for r in db.query(execution_id=result.run_id, limit=10) if r.type == "plot"
    ]
    print(f"\nscorecard run {result.run_id}; plots in the Dagster UI (make ui: assets "
          "scorecard_equity_curve and scorecard_calibration)")
    for row in sorted(plots, key=lambda r: r.id or 0):
        print(f"  #{row.id} {row.step_name}: {row.object_uri}")
    return 0


def _in_scope(
    partition_key: str, symbols: Sequence[str], start: dt.date | None, end: dt.date | None
) -> bool:
    symbol, day = symbol_and_date(partition_key)
    return (
        (not symbols or symbol in symbols)
        and (start is None or day >= start)
        and (end is None or day <= end)
    )


def _cost_estimate(llm: Any, partitions: int) -> str:
    if llm.provider_name() == "offline":
        return "$0.00 (the offline analyst makes no API calls)"
    return f"${llm.estimate_cost_usd(partitions):,.2f} at most (cached answers cost nothing)"


def cmd_artifacts(args: argparse.Namespace) -> int:
    db = _artifact_db()
    if args.action == "show":
        return _show_artifact(db, args.id, payload=args.payload)
    day = _parse_day("--date", args.date) if args.date else None
    symbol = None
    if args.symbol:
        try:
            symbol = parse_symbols(args.symbol)[0]
        except SymbolError as exc:
            raise UsageError(f"--symbol: {exc}") from exc
    rows = db.query(
        symbol=symbol, type=args.type, execution_id=args.run, partition_date=day, limit=args.limit
    )
    if not rows:
        print("no artifacts match (run `make run` first, or loosen the filters)")
        return 0
    print(
        f"{'id':>6}  {'created (UTC)':<19}  {'partition':<16}  {'asset':<15}  {'type':<11}  "
        f"{'size':>10}  run"
    )
    for r in rows:
        print(
            f"{r.id:>6}  {r.created_at:%Y-%m-%d %H:%M:%S}  {r.partition_key:<16}  "
            f"{r.step_name:<15}  {r.type:<11}  {_size(r.size_bytes):>10}  {r.execution_id}"
        )
    return 0


def _show_artifact(db: Any, artifact_id: int, *, payload: bool) -> int:
    row = db.get(artifact_id)
    if row is None:
        raise UsageError(f"no artifact #{artifact_id} in {db.masked_url()}")
    fields = row.model_dump(mode="json", exclude={"prompt", "response"}, by_alias=True)
    print(json.dumps(fields, indent=2, default=str))
    if row.prompt:
        print(f"\n--- prompt ({row.prompt_length} chars) ---\n{row.prompt}")
    if row.response:
        print(f"\n--- response ({row.response_length} chars) ---\n{row.response}")
    if payload and row.type not in ("chart", "market_data"):
        store = _resolved(resources_from_environment()["artifacts"]).store()
        print("\n--- payload ---")
        print(json.dumps(json.loads(store.read_payload(row)), indent=2))
    return 0


def effective_config() -> dict[str, str]:
    resources = resources_from_environment()
    masked = {"set": "set (hidden)", "": "not set"}
    return {
        "database": _resolved(resources["artifact_db"]).masked_url(),
        "object store": _resolved(resources["object_store"]).describe(),
        "spool": _resolved(resources["spool"]).describe(),
        "market data": _resolved(resources["market_source"]).describe(),
        "llm": _resolved(resources["llm"]).describe(),
        "broker": _resolved(resources["broker"]).describe(),
        "mlflow": _resolved(resources["mlflow"]).describe(),
        "alerts": _alerts(_resolved(resources["notifier"]).webhook_url),
        "symbols": ", ".join(_symbols(None)),
        "dagster home": os.environ.get("DAGSTER_HOME") or str(data_dir() / "dagster_home"),
        "OPENAI_API_KEY": masked["set" if os.environ.get("OPENAI_API_KEY") else ""],
        "ANTHROPIC_API_KEY": masked["set" if os.environ.get("ANTHROPIC_API_KEY") else ""],
    }


def _alerts(webhook_url: str | None) -> str:
    if not webhook_url:
        return "the run log only (ALERT_WEBHOOK_URL not set)"
    # A webhook's path is its token (Slack: /services/T.../B.../secret): only the host is shown.
    scheme, sep, rest = webhook_url.strip().partition("://")
    host = rest.rpartition("@")[2].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    return f"webhook {scheme}://{host}/*** (path hidden)" if sep and host else "webhook (hidden)"


def cmd_config(_: argparse.Namespace) -> int:
    config = effective_config()
    width = max(map(len, config))
    for key, value in config.items():
        print(f"{key:<{width}}  {value}")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from sql.migrate import SchemaAheadError, UnmanagedSchemaError, upgrade

    db = _artifact_db()
    try:
        before, after = upgrade(db.url)
    except (SchemaAheadError, UnmanagedSchemaError) as exc:
        raise UsageError(str(exc)) from exc
    except sa.exc.OperationalError as exc:
        # psycopg2's first line says what failed (refused, auth, unknown database), never the URL.
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise UsageError(
            f"cannot connect to the artifact database {db.masked_url()}: {reason}; check "
            "DATABASE_URL and that the server is running"
        ) from exc
    print(f"{db.masked_url()}: schema {before or 'empty'} -> {after}")
    return 0


def _storage() -> tuple[Any, Any]:
    """(ArtifactStore, ArtifactSpool) as configured, for the storage commands."""
    artifacts = _resolved(resources_from_environment()["artifacts"])
    return artifacts.store(log=_StderrLog()), artifacts.spool


class _StderrLog:
    def warning(self, msg: str) -> None:
        print(f"warning: {msg}", file=sys.stderr, flush=True)


def cmd_reconcile(_: argparse.Namespace) -> int:
    from io_managers.reconcile import reconcile

    store, spool = _storage()
    print(f"replaying {spool.describe()} into {store.database.masked_url()} and "
          f"{store.object_store.describe()}")
    report = reconcile(store, spool)
    for line in report.lines():
        print(line)
    return 0 if report.complete else 1


def cmd_verify(args: argparse.Namespace) -> int:
    from io_managers.reconcile import broker_orders_from, verify

    start, end = _parse_day("--start", args.start), _parse_day("--end", args.end)
    if start > end:
        raise UsageError(f"--start {start} is after --end {end}")
    symbols = _symbols(args.symbols) if args.symbols else None
    store, spool = _storage()
    broker = _resolved(resources_from_environment()["broker"])
    mode = broker.trading_mode()
    orders, note = None, None
    if mode == "simulate" or args.broker:
        # Read only: the order lists and executions, never an order sent or changed.
        with broker.venue() as venue:
            orders = broker_orders_from(
                venue.orders_between(start, end), broker.describe(), mode
            )
    else:
        note = f"{broker.describe()} not compared (connects only with --broker; read only)"
    report = verify(
        store, spool, start, end, symbols=symbols, deep=args.deep, broker=orders, broker_note=note
    )
    print(f"{store.database.masked_url()} and {store.object_store.describe()}")
    for line in report.lines():
        print(line)
    return 0 if report.consistent else 1


def cmd_runs(args: argparse.Namespace) -> int:
    """Runs in progress, their process and pool slots; ``--reap`` fails dead ones, frees slots."""
    home = ensure_dagster_home()
    with dg.DagsterInstance.get() as instance:
        report = run_recovery.reap(instance) if args.reap else run_recovery.inspect_runs(instance)
    print(f"Dagster home {home}")
    for line in run_recovery.report_lines(report):
        print(line)
    left = [r for r in report.runs if r.reapable and r.run_id not in report.reaped]
    stale = report.stale if not args.reap else []
    return 1 if left or stale else 0


def cmd_doctor(_: argparse.Namespace) -> int:
    """One line per service the configuration uses: OK, or what is wrong and what to do."""
    from trading_assets.doctor import run_checks

    ensure_dagster_home()
    resources = resources_from_environment()
    # Every resource, resolved (EnvVar fields read): the doctor picks what the configuration uses.
    resolved = {name: _resolved(resources[name]) for name in resources}
    with dg.DagsterInstance.get() as instance:
        findings = run_checks(resolved, instance)
    width = max(len(f.service) for f in findings)
    for finding in findings:
        print(finding.line(width))
    problems = [f for f in findings if not f.ok]
    print(f"{len(problems)} problem(s)" if problems else "all well")
    return 1 if problems else 0


def cmd_serve(args: argparse.Namespace) -> int:
    """The artifact browser and read API (FastAPI under uvicorn, one worker) until interrupted."""
    from trading_assets.web.server import serve
    from trading_assets.web.settings import BrowserSettings

    # A host beyond this machine without a token is refused before anything is touched.
    settings = BrowserSettings.from_env(host=args.host, port=args.port)
    # Run status comes from the same Dagster instance `run` and `make ui` use.
    ensure_dagster_home()
    serve(settings)
    return 0


class _Parser(argparse.ArgumentParser):
    """No prefix matching, in every subcommand: `--dat` is not `--date`, and a mistyped flag
    is an error, never a run over the whole watchlist."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**kwargs, "allow_abbrev": False})


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="trading-signals", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="materialize the whole graph for one trading day")
    run.add_argument("--date", help="trading day YYYY-MM-DD (default: latest closed session)")
    run.add_argument("--symbols", help="comma-separated tickers (default: STOCK_SYMBOLS)")
    run.add_argument(
        "--verbose", action="store_true", help="print Dagster's full event log of each run"
    )
    run.set_defaults(func=cmd_run)

    backfill = sub.add_parser("backfill", help="run the graph over a range of trading days")
    backfill.add_argument("--symbols", help="comma-separated tickers (default: STOCK_SYMBOLS)")
    backfill.add_argument("--start", required=True, help="first day YYYY-MM-DD")
    backfill.add_argument("--end", required=True, help="last day YYYY-MM-DD (must have closed)")
    backfill.add_argument("--workers", type=int, default=2, help="parallel processes (default 2)")
    backfill.add_argument("--yes", action="store_true", help="launch without asking")
    backfill.set_defaults(func=cmd_backfill)

    score = sub.add_parser(
        "scorecard", help="score the stored signals against what the price did next"
    )
    score.add_argument("--symbols", help="comma-separated tickers (default: every symbol)")
    score.add_argument("--start", help="first signal day YYYY-MM-DD")
    score.add_argument("--end", help="last signal day YYYY-MM-DD")
    score.add_argument(
        "--by", choices=["provider", "model", "prompt"], help="one block per group, compared"
    )
    score.add_argument(
        "--no-update", action="store_true",
        help="score only what is stored (do not first score signals whose horizon has closed)",
    )
    score.set_defaults(func=cmd_scorecard)

    arts = sub.add_parser("artifacts", help="list or show stored artifacts")
    arts_sub = arts.add_subparsers(dest="action")
    listing = arts_sub.add_parser("list", help="list artifacts, newest first")
    show = arts_sub.add_parser("show", help="one artifact's row (and payload)")
    show.add_argument("id", type=int)
    show.add_argument("--payload", action="store_true", help="print the stored JSON payload")
    for target in (arts, listing):
        target.add_argument("--symbol")
        target.add_argument(
            "--type", choices=list(ARTIFACT_TYPES)
        )
        target.add_argument("--run", help="Dagster run id")
        target.add_argument("--date", help="partition date YYYY-MM-DD")
        target.add_argument("--limit", type=int, default=50)
    arts.set_defaults(func=cmd_artifacts, action="list")

    config = sub.add_parser("config", help="print the effective configuration, secrets masked")
    config.set_defaults(func=cmd_config)

    db = sub.add_parser("db", help="artifact database schema")
    db.add_argument("db_action", choices=["upgrade"])
    db.set_defaults(func=cmd_db)

    rec = sub.add_parser(
        "reconcile", help="move artifacts waiting in the local spool into the stores (once each)"
    )
    rec.set_defaults(func=cmd_reconcile)

    ver = sub.add_parser("verify", help="check that rows and objects agree over a date range")
    ver.add_argument("--start", required=True, help="first partition day YYYY-MM-DD")
    ver.add_argument("--end", required=True, help="last partition day YYYY-MM-DD")
    ver.add_argument("--symbols", help="comma-separated tickers (default: all)")
    ver.add_argument("--deep", action="store_true", help="also re-hash every object")
    ver.add_argument("--broker", action="store_true",
                     help="IBKR modes: also compare with the gateway's orders (read only)")
    ver.set_defaults(func=cmd_verify)

    runs = sub.add_parser(
        "runs", help="runs in progress: their process, whether it is alive, their pool slots"
    )
    runs.add_argument(
        "--stuck", action="store_true",
        help="list runs in progress and the pool slots they hold (the default)",
    )
    runs.add_argument(
        "--reap", action="store_true",
        help="mark runs whose process is gone failed and free their slots (never a live run)",
    )
    runs.set_defaults(func=cmd_runs)

    doctor = sub.add_parser(
        "doctor",
        help="check every service the configuration uses (stores, MLflow, IB gateway, LLM...)",
    )
    doctor.set_defaults(func=cmd_doctor)

    serve = sub.add_parser(
        "serve", help="browse artifacts in a web browser and through the read API (GET /api/...)"
    )
    serve.add_argument(
        "--host", default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; any other needs ARTIFACT_BROWSER_TOKEN)",
    )
    serve.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    serve.set_defaults(func=cmd_serve)
    return parser


def _is_concurrent_creation(text: str) -> bool:
    """Whether a database error is the trace of a concurrent first-time creation (a race)."""
    lowered = text.lower()
    return ("already exists" in lowered and ("table" in lowered or "index" in lowered)) or (
        "unique constraint failed: alembic_version" in lowered
    )


def main(argv: Sequence[str] | None = None) -> int:
    from sql.locks import StoreInitialisationBusyError

    args = build_parser().parse_args(argv)
    # ib_async prints its own two lines for a refused connection (through logging's last-resort
    # handler); the command says it once, with host, port and what to start.
    logging.getLogger("ib_async").addHandler(logging.NullHandler())
    try:
        with _RESOURCES:
            return args.func(args)
    except SettingError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    except PreflightError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except (UsageError, LlmConfigError, BrokerConfigError, MarketDataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ObjectStoreError, SpoolError, StoreUnavailableError, sa_exc.OperationalError,
            sa_exc.IntegrityError, StoreInitialisationBusyError) as exc:
        # Say which and why in one line (never the URL: it may hold a password).
        detail = exc.orig if isinstance(exc, sa_exc.DBAPIError) and exc.orig else exc
        text = str(detail).strip().splitlines()[0] if str(detail).strip() else type(exc).__name__
        if isinstance(exc, StoreInitialisationBusyError):
            print(f"error: {text}", file=sys.stderr)
        elif _is_concurrent_creation(text):
            # Not an outage: another process created the same store a moment ago.
            print(
                f"error: another process was creating the same store at the same time "
                f"({type(exc).__name__}: {text}): run the command again",
                file=sys.stderr,
            )
        elif isinstance(exc, sa_exc.IntegrityError):
            raise
        else:
            print(f"error: a store is unavailable: {type(exc).__name__}: {text}", file=sys.stderr)
        return 3
    finally:
        # `run` froze the loaded heap; a caller (tests, tools) gets its heap collected as before.
        gc.unfreeze()


def entry() -> None:
    """The `trading-signals` command: ``main``, then exit without a final walk of the heap."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader left (`... --payload | head`): no traceback. Python would flush stdout once
        # more at exit and fail again, so what is left goes nowhere; 141 is what a shell reports
        # for a writer stopped by a closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 141
    # Frozen, the ~500,000 loaded objects are skipped by the interpreter's final collection,
    # which otherwise took a second of every command.
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    entry()
