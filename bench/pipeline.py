"""Figures of the pipeline itself: charts, one partition in and out of Dagster, the CLI, backfill.

Every figure runs in a throwaway data folder and Dagster home, never in the project's ``data/``.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg

from bench import charts
from bench.stats import Figure, median, timed
from sql.dagster_event_log import pin_base_dir
from trading_assets.analysis.answer import build_signal
from trading_assets.backfill import freeze_loaded_heap
from trading_assets.calendar import latest_completed_session, sessions_between
from trading_assets.charts.assets import DAILY_BARS_SHOWN, WEEKLY_BARS_SHOWN
from trading_assets.charts.render import render_chart, weekly_bars
from trading_assets.definitions import build_definitions
from trading_assets.environment import resources_from_environment
from trading_assets.execution.assets import placed_order_artifact
from trading_assets.execution.placement import OrderRequest, place_once
from trading_assets.indicators import indicator_snapshot
from trading_assets.jobs import trading_signals_job
from trading_assets.models import Timeframe
from trading_assets.partitions import partition_key_for
from trading_assets.tracking.record import TRACKED_ASSETS, build_run_spec, load_outcome

ROOT = Path(__file__).resolve().parent.parent
LAST_DAY = dt.date(2025, 5, 30)  # a closed session far from holidays
HISTORY = 520
JOB = trading_signals_job.name


def trading_days(count: int, last: dt.date = LAST_DAY) -> list[dt.date]:
    sessions = [d.date() for d in sessions_between(last - dt.timedelta(days=count * 2 + 10), last)]
    return sessions[-count:]


@contextmanager
def sandbox(root: Path, name: str) -> Iterator[dict[str, str]]:
    """A data folder and Dagster home of its own; yields the environment that points at them."""
    folder = root / name
    home = folder / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    pin_base_dir(home / "dagster.yaml")  # opened in process, whatever DAGSTER_HOME says
    env = {"TRADING_DATA_DIR": str(folder / "data"), "DAGSTER_HOME": str(home)}
    try:
        yield env
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- charts ----------------------------------------------------------------------------------


def chart_figures(repeat: int) -> list[Figure]:
    """The chart renders beside Plotly+Kaleido, the previous system's approach (bench/charts.py)."""
    return charts.chart_figures(repeat, history=HISTORY, last_day=LAST_DAY)


# -- one partition -----------------------------------------------------------------------------


def _direct_partition(resources: dict[str, Any], symbol: str, day: dt.date) -> list[int]:
    """The same work as one run of the job, as plain calls of the assets' functions: no Dagster.

    Everything the job does is here (the seven values, their artifacts, the order through the
    same ``place_once``, the MLflow run) except the asset checks and the chart thumbnails, which
    exist only in Dagster: the ratio charges them to Dagster. Returns the artifact ids written.
    """
    store = resources["artifacts"].store()
    llm, policy, broker = resources["llm"], resources["policy"], resources["broker"]
    key = str(partition_key_for(symbol, day))
    run_id = f"direct-{time.time_ns()}"
    written: dict[str, int] = {}

    def write(value: object, asset: str) -> None:
        record = store.write(
            value, asset_name=asset, symbol=symbol, partition_key=key, partition_date=day,
            job_name=JOB, run_id=run_id, step_key=asset,
        )
        assert record.id is not None
        written[asset] = record.id

    market = resources["market_source"].fetch(symbol, day)
    write(market, "market_data")
    daily = render_chart(
        market.bars, symbol=symbol, as_of=day, timeframe=Timeframe.DAILY,
        bars_shown=DAILY_BARS_SHOWN,
    )
    write(daily, "daily_chart")
    weekly = render_chart(
        weekly_bars(market.bars), symbol=symbol, as_of=day, timeframe=Timeframe.WEEKLY,
        bars_shown=WEEKLY_BARS_SHOWN,
    )
    write(weekly, "weekly_chart")
    request = llm.prepare(
        symbol=symbol, as_of=day, indicators=indicator_snapshot(market.bars),
        charts={"daily": daily.png, "weekly": weekly.png},
    )
    analysis = llm.analyse(request)
    write(analysis, "llm_analysis")
    signal = build_signal(analysis, min_confidence=policy.min_confidence, symbol=symbol, as_of=day)
    write(signal, "trading_signal")
    # order and portfolio: what their assets call, in the same order.
    mode = broker.trading_mode()
    if mode == "simulate":
        broker.paper().prepare(market)
    order_request = OrderRequest(
        symbol=symbol, day=day, mode=mode, signal=signal, market=market,
        limits=policy.limits(), trading_enabled=policy.trading_enabled,
        kill_switch=policy.kill_switch_reason(),
        latest_session=latest_completed_session(dt.datetime.now(dt.UTC)),
    )
    decision, _ = place_once(
        order_request, prior=placed_order_artifact(store, symbol, day), open_venue=broker.venue
    )
    write(decision, "order")
    with broker.venue() as venue:
        write(venue.snapshot(day, symbol), "portfolio")
    # mlflow_run: the partition as one MLflow run, read back from the stores, its ids on the rows.
    outcome = load_outcome(store, key)
    newest = {asset: outcome.stored[asset].record.id for asset in TRACKED_ASSETS}
    assert newest == written, f"{key}: the newest rows {newest} are not the ones written {written}"
    spec = build_run_spec(
        outcome, symbol=symbol, day=day, partition_key=key, dagster_run_id=run_id, job_name=JOB
    )
    logged = resources["mlflow"].log_run(spec)
    resources["artifact_db"].set_mlflow_ids(
        outcome.artifact_ids(), partition_key=key, run_id=logged.run_id,
        experiment_id=logged.experiment_id,
    )
    return list(written.values())


def _graph_times(root: Path, days: list[dt.date]) -> tuple[list[float], Counter, int]:
    """Seconds of each run after the first, in one warm process; the last run's event counts."""
    with sandbox(root, "graph") as env:
        job = build_definitions(resources_from_environment(env)).resolve_job_def(JOB)
        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            instance.add_dynamic_partitions("symbol", ["BENCH"])

            def run(day: dt.date) -> None:
                result = job.execute_in_process(
                    partition_key=partition_key_for("BENCH", day), instance=instance,
                    run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
                )
                assert result.success, f"the benchmark run for {day} failed"

            run(days[0])  # warm: imports, matplotlib, schema migration
            # As a backfill worker does after its first partition (trading_assets/backfill.py).
            freeze_loaded_heap(collect=True)
            times = [timed(lambda d=d: run(d), 1)[0] for d in days[1:]]
            last_run = instance.get_run_records(limit=1)[0].dagster_run.run_id
            entries = instance.all_logs(last_run)
    counts = Counter(e.dagster_event_type for e in entries if e.is_dagster_event)
    return times, counts, len(entries)


def partition_figure(root: Path, repeat: int, last: dt.date = LAST_DAY) -> Figure:
    days = trading_days(repeat + 1, last)
    try:
        dagster_times, counts, entries = _graph_times(root, days)
        with sandbox(root, "direct") as env:
            resources = resources_from_environment(env)
            _direct_partition(resources, "BENCH", days[0])
            freeze_loaded_heap(collect=True)
            direct_times = [timed(lambda d=d: _direct_partition(resources, "BENCH", d), 1)[0]
                            for d in days[1:]]
    finally:
        gc.unfreeze()  # the caller's heap (a test's, say) is collected as before
    graph, direct = median(dagster_times), median(direct_times)
    ratio = graph / direct
    return Figure(
        f"whole graph, one partition, warm, median (Dagster/direct {ratio:.2f}x)",
        graph,
        "s",
        "the same functions and artifact writes called directly",
        direct,
        "<= 2 s and <= 1.5x direct",
        graph <= 2.0 and ratio <= 1.5,
        f"{repeat} partitions; per run {counts[dg.DagsterEventType.ASSET_MATERIALIZATION]} "
        f"assets, {counts[dg.DagsterEventType.ASSET_CHECK_EVALUATION]} checks, {entries} "
        "event-log entries (each stored in SQLite)",
    )


# -- fresh processes -------------------------------------------------------------------------


def _cli() -> str:
    return str(Path(sys.executable).parent / "trading-signals")


# Starts the measured command and reports its wall time and peak RSS. It runs as a small process
# of its own because Linux hands a forked child its parent's peak RSS: measured straight from this
# (large) benchmark process, every child "peaked" at least at the benchmark's own size.
_LAUNCHER = """
import json, os, subprocess, sys, time
started = time.perf_counter()
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
seconds = time.perf_counter() - started
with open(sys.argv[1], "w") as out:
    json.dump({"seconds": seconds, "status": status, "maxrss_kb": usage.ru_maxrss}, out)
"""


def _timed_process(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    """(wall seconds, peak resident memory in MB) of a child process, which must succeed."""
    with tempfile.NamedTemporaryFile(suffix=".json") as result:
        process = subprocess.run(
            [sys.executable, "-S", "-c", _LAUNCHER, result.name, *command], cwd=ROOT,
            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            check=False,
        )
        measured = json.loads(Path(result.name).read_text() or "{}")
    returncode = os.waitstatus_to_exitcode(measured["status"]) if measured else process.returncode
    if process.returncode != 0 or returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} exited with {returncode}:\n{process.stdout.decode()[-2000:]}"
        )
    return measured["seconds"], measured["maxrss_kb"] // 1024


def process_figures(root: Path) -> tuple[list[Figure], float]:
    """`trading-signals run` for one symbol as a fresh process, and its peak memory."""
    imports = [_timed_process([sys.executable, "-c", "import dagster"], {}) for _ in range(3)]
    with sandbox(root, "cli") as env:
        day = trading_days(1)[0]
        command = [_cli(), "run", "--symbols", "BENCH", "--date", day.isoformat()]
        _timed_process(command, env)  # first run migrates the schema and fills OS caches
        runs = [
            _timed_process([_cli(), "run", "--symbols", "BENCH", "--date", d.isoformat()], env)
            for d in trading_days(3)[:2]
        ]
    seconds = median([r[0] for r in runs])
    peak_mb = max(r[1] for r in runs)
    return [
        Figure(
            "`trading-signals run`, one symbol, fresh process",
            seconds,
            "s",
            'python -c "import dagster"',
            median([i[0] for i in imports]),
            "<= 6 s",
            seconds <= 6.0,
        ),
        Figure(
            "peak memory of one run (max RSS of that process)",
            float(peak_mb),
            "MB",
            'python -c "import dagster"',
            float(max(i[1] for i in imports)),
            "<= 500 MB",
            peak_mb <= 500,
        ),
    ], seconds


def _without_pool_limits(home: Path) -> None:
    """The sandbox instance's dagster.yaml without `concurrency: pools:` (for comparison only)."""
    import yaml

    path = home / "dagster.yaml"
    config = yaml.safe_load(path.read_text()) or {}
    config.get("concurrency", {}).pop("pools", None)
    path.write_text(yaml.safe_dump(config))


def pool_waits(home: Path) -> tuple[int, float]:
    """(steps that waited for a pool slot, seconds they waited) over every run in ``home``.

    A step that finds its pool full is retried after 1 s at the earliest (growing 10 % a try), and
    the in-process executor polls without sleeping meanwhile: the waiting process keeps a core busy.
    """
    waited, seconds = 0, 0.0
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for record in instance.get_run_records():
            blocked_at: dict[str, float] = {}
            for entry in instance.all_logs(record.dagster_run.run_id):
                step, kind = entry.step_key, entry.dagster_event_type
                if kind == dg.DagsterEventType.ENGINE_EVENT and step and "blocked by limit" in (
                    entry.user_message or ""
                ):
                    blocked_at.setdefault(step, entry.timestamp)
                elif kind == dg.DagsterEventType.STEP_START and step in blocked_at:
                    waited += 1
                    seconds += entry.timestamp - blocked_at[step]
    return waited, seconds


def backfill_figure(
    root: Path, symbols: int, days: int, one_by_one_seconds: float, *, pool_limit: bool = True,
    compared_to: Figure | None = None,
) -> Figure:
    """Partitions per minute of `trading-signals backfill` with 2 workers, on a new data folder.

    With ``pool_limit=False`` the sandbox's instance drops dagster.yaml's pool limit, to show
    what the limit costs; the project's own dagster.yaml always keeps it.
    """
    chosen = trading_days(days)
    names = ",".join(f"BENCH{chr(ord('A') + i)}" for i in range(symbols))
    with sandbox(root, "backfill" if pool_limit else "backfill-no-pools") as env:
        home = Path(env["DAGSTER_HOME"])
        if not pool_limit:
            _without_pool_limits(home)
        command = [
            _cli(), "backfill", "--symbols", names, "--start", chosen[0].isoformat(),
            "--end", chosen[-1].isoformat(), "--workers", "2", "--yes",
        ]
        seconds, _ = _timed_process(command, env)
        waited, waited_seconds = pool_waits(home)
    partitions = symbols * days
    rate = partitions / seconds * 60
    note = (
        f"{partitions} partitions in {seconds:.1f} s, 2 workers; {waited} steps waited "
        f"{waited_seconds:.0f} s in all for a pool slot"
    )
    if compared_to is not None:
        return Figure(
            f"backfill {symbols} x {days}, without dagster.yaml's pool limit (comparison only)",
            rate,
            "partitions/min",
            "the same backfill with the limit (above)",
            compared_to.value,
            "-",
            None,
            note,
        )
    return Figure(
        f"`trading-signals backfill` {symbols} symbols x {days} trading days, offline "
        "(ranged runs, 2 workers)",
        rate,
        "partitions/min",
        "one `trading-signals run` process per partition",
        60 / one_by_one_seconds,
        ">= 90 partitions/min",
        rate >= 90,
        note,
    )
