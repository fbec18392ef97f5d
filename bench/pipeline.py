"""Figures of the pipeline itself: charts, one partition in and out of Dagster, the CLI, backfill.

Every figure runs in a throwaway data folder and Dagster home, never in the project's ``data/``.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import matplotlib

matplotlib.use("Agg")
import mplfinance as mpf  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402

from bench.stats import Figure, median, p95, timed  # noqa: E402
from io_managers.artifact_store import ArtifactStore  # noqa: E402
from resources.environment import resources_from_environment  # noqa: E402
from trading_assets.analysis.answer import build_signal  # noqa: E402
from trading_assets.calendar import sessions_between  # noqa: E402
from trading_assets.charts.assets import DAILY_BARS_SHOWN, WEEKLY_BARS_SHOWN  # noqa: E402
from trading_assets.charts.render import render_chart, weekly_bars  # noqa: E402
from trading_assets.definitions import build_definitions  # noqa: E402
from trading_assets.execution.rules import NoOrder, decide, order_ref  # noqa: E402
from trading_assets.indicators import indicator_snapshot  # noqa: E402
from trading_assets.market_data.synthetic import synthetic_bars  # noqa: E402
from trading_assets.models import OrderDecision, Timeframe  # noqa: E402
from trading_assets.partitions import partition_key_for  # noqa: E402
from trading_assets.tracking.record import build_run_spec, load_outcome  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LAST_DAY = dt.date(2025, 5, 30)  # a closed session far from holidays
HISTORY = 520
JOB = "trading_signals_job"
PREVIOUS_CHART_SECONDS = 25.0


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
    env = {"TRADING_DATA_DIR": str(folder / "data"), "DAGSTER_HOME": str(home)}
    try:
        yield env
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- charts ----------------------------------------------------------------------------------


def chart_figures(repeat: int) -> list[Figure]:
    bars = synthetic_bars("BENCH", LAST_DAY, HISTORY).bars
    weekly = weekly_bars(bars)

    def daily() -> None:
        render_chart(
            bars, symbol="BENCH", as_of=LAST_DAY, timeframe=Timeframe.DAILY,
            bars_shown=DAILY_BARS_SHOWN,
        )

    def week() -> None:
        render_chart(
            weekly, symbol="BENCH", as_of=LAST_DAY, timeframe=Timeframe.WEEKLY,
            bars_shown=WEEKLY_BARS_SHOWN,
        )

    def bare() -> None:
        # The floor: mplfinance's plain candles of the same bars, no panels, PNG in memory.
        import io

        fig, _ = mpf.plot(bars.iloc[-DAILY_BARS_SHOWN:], type="candle", returnfig=True)
        fig.savefig(io.BytesIO(), format="png")
        plt.close(fig)

    daily(), week(), bare()  # warm: fonts and mplfinance styles load once per process
    floor = median(timed(bare, repeat))
    figures = []
    for name, fn in (("daily chart render", daily), ("weekly chart render", week)):
        times = timed(fn, repeat)
        figures.append(
            Figure(
                f"{name}, median (p95 {p95(times):.3f} s)",
                median(times),
                "s",
                f"bare mplfinance candles (previous system: ~{PREVIOUS_CHART_SECONDS:g} s)",
                floor,
                "<= 0.4 s",
                median(times) <= 0.4,
                f"{repeat} renders",
            )
        )
    return figures


# -- one partition -----------------------------------------------------------------------------


def _direct_partition(resources: dict[str, Any], symbol: str, day: dt.date) -> None:
    """The same work as one run of the job, as plain function calls: no Dagster.

    Everything the job does is here (the seven values, their artifacts, the MLflow run) except
    the asset checks, which exist only in Dagster: the ratio charges them to Dagster.
    """
    store = ArtifactStore(resources["artifact_db"], resources["object_store"])
    llm, policy, broker = resources["llm"], resources["policy"], resources["broker"]
    key = str(partition_key_for(symbol, day))
    run_id = f"direct-{time.time_ns()}"

    def write(value: object, asset: str) -> None:
        store.write(
            value, asset_name=asset, symbol=symbol, partition_key=key, partition_date=day,
            job_name=JOB, run_id=run_id, step_key=asset,
        )

    market = synthetic_bars(symbol, day, HISTORY)
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
    paper = broker.paper()
    paper.record_mark(symbol, day, market.latest_close)
    paper.process_bars(symbol, market.bars, day)
    intent = decide(
        signal, limits=policy.limits(), equity=paper.equity(day),
        position_qty=paper.position(symbol, day),
    )
    if isinstance(intent, NoOrder):
        decision = OrderDecision(
            symbol=symbol, as_of=day, placed=False, reason=intent.reason, mode="simulate"
        )
    else:
        ref = order_ref(symbol, str(day))
        ticket, _ = paper.submit(ref, symbol, day, intent, market.latest_close)
        decision = OrderDecision(
            symbol=symbol, as_of=day, placed=True, reason=intent.sizing_note, mode="simulate",
            order=ticket, fills=paper.fills_for(ref),
        )
    write(decision, "order")
    write(paper.snapshot(day, symbol), "portfolio")
    # mlflow_run: the partition as one MLflow run, its ids on the rows.
    outcome = load_outcome(store, key)
    spec = build_run_spec(
        outcome, symbol=symbol, day=day, partition_key=key, dagster_run_id=run_id, job_name=JOB
    )
    logged = resources["mlflow"].log_run(spec)
    resources["artifact_db"].set_mlflow_ids(
        outcome.artifact_ids(), partition_key=key, run_id=logged.run_id,
        experiment_id=logged.experiment_id,
    )


def partition_figure(root: Path, repeat: int) -> Figure:
    days = trading_days(repeat + 1)
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
            dagster_times = [timed(lambda d=d: run(d), 1)[0] for d in days[1:]]
    with sandbox(root, "direct") as env:
        resources = resources_from_environment(env)
        _direct_partition(resources, "BENCH", days[0])
        direct_times = [timed(lambda d=d: _direct_partition(resources, "BENCH", d), 1)[0]
                        for d in days[1:]]
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
        f"{repeat} partitions; 7 assets and their checks per run",
    )


# -- fresh processes -------------------------------------------------------------------------


def _cli() -> str:
    return str(Path(sys.executable).parent / "trading-signals")


def _timed_process(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    """(wall seconds, peak resident memory in MB) of a child process, which must succeed."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output = process.stdout.read() if process.stdout else b""
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} exited with {process.returncode}:\n{output.decode()[-2000:]}"
        )
    return elapsed, usage.ru_maxrss // 1024


def process_figures(root: Path) -> tuple[list[Figure], float]:
    """`trading-signals run` for one symbol as a fresh process, and its peak memory."""
    import_times = [
        _timed_process([sys.executable, "-c", "import dagster"], {})[0] for _ in range(3)
    ]
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
            median(import_times),
            "<= 6 s",
            seconds <= 6.0,
        ),
        Figure(
            "peak memory of one run (max RSS of that process)",
            float(peak_mb),
            "MB",
            "-",
            None,
            "<= 500 MB",
            peak_mb <= 500,
        ),
    ], seconds


def backfill_figure(root: Path, symbols: int, days: int, one_by_one_seconds: float) -> Figure:
    chosen = trading_days(days)
    names = ",".join(f"BENCH{chr(ord('A') + i)}" for i in range(symbols))
    with sandbox(root, "backfill") as env:
        command = [
            _cli(), "backfill", "--symbols", names, "--start", chosen[0].isoformat(),
            "--end", chosen[-1].isoformat(), "--workers", "2", "--yes",
        ]
        seconds, _ = _timed_process(command, env)
    partitions = symbols * days
    rate = partitions / seconds * 60
    return Figure(
        f"backfill {symbols} symbols x {days} trading days, offline",
        rate,
        "partitions/min",
        "one `trading-signals run` process per partition",
        60 / one_by_one_seconds,
        ">= 60 partitions/min",
        rate >= 60,
        f"{partitions} partitions in {seconds:.1f} s, 2 workers",
    )
