"""`make bench`: every figure beside its baseline from the same run, as a table and JSON.

    python -m bench.run [--quick] [--no-postgres] [--out bench/results.json]

``--quick`` shrinks every size (a smoke run for the test suite); the targets only mean
something at full size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import evaluation, imports, native, pipeline, ranged, storage, web
from bench.stats import Figure, skipped


@dataclass(frozen=True)
class Sizes:
    chart_renders: int
    partitions: int
    backfill_symbols: int
    backfill_days: int
    artifact_rounds: int
    query_rows: int
    query_repeat: int
    scoring_symbols: int
    scoring_years: int


FULL = Sizes(20, 8, 2, 60, 60, 1_000_000, 50, 20, 10)
QUICK = Sizes(2, 2, 2, 2, 2, 2_000, 3, 2, 1)


def measure(
    sizes: Sizes, root: Path, with_postgres: bool, log: Callable[..., None] = print
) -> list[Figure]:
    figures: list[Figure] = []

    began = time.perf_counter()

    def section(title: str) -> None:
        log(f"-- [{time.perf_counter() - began:5.0f} s] {title}", flush=True)

    section("chart renders")
    figures += pipeline.chart_figures(sizes.chart_renders)
    section(f"scoring {sizes.scoring_symbols} symbols x {sizes.scoring_years} years of signals")
    figures += evaluation.scoring_figures(sizes.scoring_symbols, sizes.scoring_years)
    section("one partition through Dagster and directly")
    partition = pipeline.partition_figure(root, sizes.partitions)
    figures.append(partition)
    direct = partition.baseline_value or 0.0
    section(f"a ranged run: {sizes.backfill_days} days of one symbol")
    figures.append(ranged.ranged_figure(root, sizes.backfill_days, direct))
    section("the CLI as a fresh process")
    process, one_run = pipeline.process_figures(root)
    figures += process
    section("loading the code location (python -X importtime)")
    figures += imports.import_figures()
    section(f"`trading-signals backfill` {sizes.backfill_symbols} x {sizes.backfill_days}")
    figures.append(pipeline.backfill_figure(
        root, sizes.backfill_symbols, sizes.backfill_days, one_run
    ))
    section(f"native Dagster backfill {sizes.backfill_symbols} x {sizes.backfill_days} "
            "(dagster dev, GraphQL, daemon)")
    # The floor: a partition's bare functions on every core (2 here), no Dagster at all.
    bare_rate = (os.cpu_count() or 1) * 60 / direct if direct else 0.0
    figures.append(native.native_backfill_figure(
        root, sizes.backfill_symbols, sizes.backfill_days, bare_rate
    ))
    reason = storage.postgres_available() if with_postgres else "--no-postgres"
    with storage.backends(root, with_postgres=reason is None) as found:
        for backend in found:
            section(f"artifact write/load, {backend.name}")
            some = _sample_values()
            figures += storage.write_load_figures(backend, some, sizes.artifact_rounds)
            section(f"queries over {sizes.query_rows:,} rows, {backend.name}")
            figures += storage.query_figures(backend, sizes.query_rows, sizes.query_repeat)
    if reason is not None:
        for name in ("artifact write/load", "artifact queries"):
            figures.append(skipped(f"{name}, PostgreSQL + S3 protocol", "ms", "see above", reason))
    section(f"artifact browser: the list over {sizes.query_rows:,} rows, the image endpoint")
    figures += web.figures(root, sizes.query_rows, sizes.query_repeat, _chart_png(),
                           with_postgres=reason is None)
    if reason is not None:
        figures.append(skipped("list endpoint, PostgreSQL", "ms", f"<= {web.LIST_TARGET_MS:g} ms",
                               reason))
    return figures


def _chart_png() -> bytes:
    """A real daily chart, as the image endpoint serves it."""
    from trading_assets.models import ChartImage

    chart = _sample_values()["daily_chart"]
    assert isinstance(chart, ChartImage)
    return chart.png


def _sample_values() -> dict[str, object]:
    """One real value of each asset, from a direct run of the pure functions."""
    import datetime as dt

    from trading_assets.analysis.answer import build_signal
    from trading_assets.charts.render import render_chart, weekly_bars
    from trading_assets.environment import resources_from_environment
    from trading_assets.indicators import indicator_snapshot
    from trading_assets.market_data.synthetic import synthetic_bars
    from trading_assets.models import OrderDecision, Timeframe

    day = dt.date(2025, 5, 30)
    with tempfile.TemporaryDirectory() as tmp:
        resources = resources_from_environment({"TRADING_DATA_DIR": tmp})
        market = synthetic_bars("BENCH", day, pipeline.HISTORY)
        daily = render_chart(market.bars, symbol="BENCH", as_of=day, timeframe=Timeframe.DAILY,
                             bars_shown=130)
        weekly = render_chart(weekly_bars(market.bars), symbol="BENCH", as_of=day,
                              timeframe=Timeframe.WEEKLY, bars_shown=104)
        llm = resources["llm"]
        analysis = llm.analyse(llm.prepare(
            symbol="BENCH", as_of=day, indicators=indicator_snapshot(market.bars),
            charts={"daily": daily.png, "weekly": weekly.png}))
        signal = build_signal(analysis, min_confidence=50, symbol="BENCH", as_of=day)
        snapshot = resources["broker"].paper().snapshot(day, "BENCH")
    decision = OrderDecision(
        symbol="BENCH", as_of=day, placed=False, reason="bench", mode="simulate"
    )
    return {"market_data": market, "daily_chart": daily, "weekly_chart": weekly,
            "llm_analysis": analysis, "trading_signal": signal, "order": decision,
            "portfolio": snapshot}


def table(figures: Sequence[Figure]) -> str:
    def number(value: float | None) -> str:
        if value is None:
            return "-"
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"

    rows = [("figure", "value", "baseline (same run)", "target", "met")]
    for f in figures:
        baseline = f"{number(f.baseline_value)} {f.unit}  ({f.baseline})" if f.baseline_value \
            is not None else f.baseline
        met = {True: "yes", False: "NO", None: "-"}[f.met]
        rows.append((f.name, f"{number(f.value)} {f.unit}".strip(), baseline, f.target, met))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"  * {f.name}: {f.note}" for f in figures if f.note]
    return "\n".join(lines + ([""] + notes if notes else []))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite + local folder only")
    parser.add_argument("--out", default="bench/results.json", help="where the JSON goes")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="trading-bench-") as tmp:
        figures = measure(sizes, Path(tmp), with_postgres=not args.no_postgres)
    print()
    print(table(figures))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                    "platform": platform.platform()},
        "quick": args.quick,
        "seconds": round(time.perf_counter() - started, 1),
        "figures": [f.as_dict() for f in figures],
    }, indent=2) + "\n")
    print(f"\nwritten to {out}")
    missed = [f.name for f in figures if f.met is False]
    # Missing a target is a finding for the README, not a crash: the table is the result.
    print(f"targets missed: {len(missed)}" + "".join(f"\n  - {m}" for m in missed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
