"""Figures of the artifact browser: the list endpoint over a million rows, the image endpoint.

The rows are bulk-inserted with the secondary indexes dropped, then indexed and analysed (a
million rows in seconds, with no statement timeout); each figure is measured through the
application (FastAPI's TestClient: routing, validation, the queries, JSON) beside the bare SQL.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from bench.stats import Figure, median, p95
from bench.storage import ASSETS, SYMBOLS, TYPES, postgres_database
from io_managers.artifact_store import ArtifactStore
from resources.database import ArtifactDatabase
from resources.object_store import LocalObjectStore
from sql.engine import create_database_engine, is_sqlite, parse_database_url
from sql.migrate import upgrade
from sql.schema import artifacts
from trading_assets.web.app import create_app
from trading_assets.web.queries import ArtifactFilter, ArtifactQueries, Cursor

LIST_TARGET_MS = 50.0
IMAGE_TARGET_MS = 30.0
START = dt.datetime(2020, 1, 1, 21, 0, tzinfo=dt.UTC)
_PROMPT = "Analyse the daily and weekly charts of {s} as of {d}. " * 6
_COLUMNS = (
    "name", "type", "symbol", "workflow_id", "execution_id", "step_name", "dag_id", "task_id",
    "partition_key", "partition_date", "prompt", "prompt_length", "model_name", "chart_type",
    "action", "confidence", "signal_data", "artifact_metadata", "object_uri", "content_hash",
    "size_bytes", "created_at", "updated_at",
)


def row_time(n: int) -> dt.datetime:
    """Row n's time: one day per 700 rows, a symbol every 10 s, an asset every second."""
    day, rest = divmod(n, SYMBOLS * len(ASSETS))
    symbol, asset = divmod(rest, len(ASSETS))
    return START + dt.timedelta(days=day, seconds=symbol * 10 + asset)


def _row(n: int) -> tuple[Any, ...]:
    day, rest = divmod(n, SYMBOLS * len(ASSETS))
    s, a = divmod(rest, len(ASSETS))
    asset, kind = ASSETS[a], TYPES[ASSETS[a]]
    date = (START.date() + dt.timedelta(days=day)).isoformat()
    symbol, run = f"S{s}", f"run-{day}-{s}"
    created = row_time(n).strftime("%Y-%m-%d %H:%M:%S.%f")  # as SQLAlchemy stores it
    key = f"{asset}/{symbol}/{date}/{run}-{n:012x}.bin"
    prompt = _PROMPT.format(s=symbol, d=date) if kind == "llm" else None
    action = ("BUY", "SELL", "HOLD")[n % 3] if kind == "signal" else None
    signal = json.dumps({"action": action, "entry_price": 100.0}) if action else None
    metadata = json.dumps({"content_type": "application/octet-stream", "object_key": key})
    return (
        f"{asset}:{symbol}:{date}", kind, symbol, "bench", run, asset, "bench", asset,
        f"{date}|{symbol}", date, prompt, len(prompt) if prompt else None,
        "offline-rules-v1" if kind in ("llm", "signal") else None,
        "daily" if asset == "daily_chart" else "weekly" if asset == "weekly_chart" else None,
        action, 60.0 if action else None, signal, metadata, f"file:///bench/{key}",
        f"{n:064x}", 100, created, created,
    )


@contextmanager
def _bulk_engine(url: str) -> Iterator[sa.Engine]:
    """An engine for the fill only: none of the pipeline's statement timeout."""
    engine = sa.create_engine(parse_database_url(url))
    try:
        yield engine
    finally:
        engine.dispose()


def fill(url: str, rows: int) -> float:
    """Migrate ``url`` and bulk-insert ``rows`` rows; seconds it took."""
    started = time.perf_counter()
    upgrade(url)
    with _bulk_engine(url) as engine:
        with engine.begin() as conn:
            for index in artifacts.indexes:
                conn.execute(sa.text(f"DROP INDEX {index.name}"))
        if is_sqlite(url):
            _insert_sqlite(engine, rows)
        else:
            _insert_postgres(engine, rows)
        with engine.begin() as conn:
            for index in artifacts.indexes:
                index.create(conn)
            conn.execute(sa.text("ANALYZE"))
        if not is_sqlite(url):
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                # Index-only scans (the COUNTs) need the visibility map a VACUUM writes.
                conn.execute(sa.text("VACUUM ANALYZE artifacts"))
    return time.perf_counter() - started


def _insert_sqlite(engine: sa.Engine, rows: int) -> None:
    insert = (
        f"INSERT INTO artifacts ({', '.join(_COLUMNS)}) "
        f"VALUES ({', '.join('?' for _ in _COLUMNS)})"
    )
    raw = engine.raw_connection()
    try:
        generated = (_row(n) for n in range(rows))
        while chunk := list(itertools.islice(generated, 50_000)):
            raw.cursor().executemany(insert, chunk)
        raw.commit()
    finally:
        raw.close()


def _insert_postgres(engine: sa.Engine, rows: int) -> None:
    per_day, n_assets = SYMBOLS * len(ASSETS), len(ASSETS)
    assets = "ARRAY[" + ",".join(f"'{a}'" for a in ASSETS) + "]"
    types = "ARRAY[" + ",".join(f"'{TYPES[a]}'" for a in ASSETS) + "]"
    sql = f"""
        INSERT INTO artifacts ({', '.join(_COLUMNS)})
        SELECT a || ':S' || s || ':' || d, t, 'S' || s, 'bench', 'run-' || dn || '-' || s, a,
            'bench', a, d || '|S' || s, d,
            CASE WHEN t = 'llm' THEN repeat('Analyse the charts of S' || s || '. ', 12) END,
            CASE WHEN t = 'llm' THEN 300 END,
            CASE WHEN t IN ('llm', 'signal') THEN 'offline-rules-v1' END,
            CASE a WHEN 'daily_chart' THEN 'daily' WHEN 'weekly_chart' THEN 'weekly' END,
            CASE WHEN t = 'signal' THEN (ARRAY['BUY','SELL','HOLD'])[n % 3 + 1] END,
            CASE WHEN t = 'signal' THEN 60.0 END,
            CASE WHEN t = 'signal' THEN jsonb_build_object('entry_price', 100.0) END,
            jsonb_build_object('content_type', 'application/octet-stream',
                               'object_key', a || '/' || n || '.bin'),
            'file:///bench/' || a || '/' || n || '.bin', lpad(to_hex(n), 64, '0'), 100,
            created, created
        FROM (
            SELECT n, n / {per_day} AS dn, (n / {n_assets}) % {SYMBOLS} AS s,
                   ({assets})[n % {n_assets} + 1] AS a, ({types})[n % {n_assets} + 1] AS t,
                   (DATE '{START.date()}' + (n / {per_day})::int) AS d,
                   TIMESTAMPTZ '{START.isoformat()}' + make_interval(
                       days => (n / {per_day})::int,
                       secs => ((n / {n_assets}) % {SYMBOLS}) * 10 + n % {n_assets}) AS created
            FROM generate_series(0, {rows - 1}) AS n
        ) g
    """
    with engine.begin() as conn:
        conn.execute(sa.text(sql.replace(":", "\\:")))  # colons are SQL here, not parameters


# -- the list endpoint -------------------------------------------------------------------------


def _requests(rows: int) -> dict[str, tuple[dict[str, Any], ArtifactFilter]]:
    """name -> (the list endpoint's parameters, the same filter for the bare queries)."""
    days = max(1, rows // (SYMBOLS * len(ASSETS)))
    mid = START.date() + dt.timedelta(days=days // 2)
    month = (mid, mid + dt.timedelta(days=30))
    run = f"run-{days // 2}-7"
    return {
        "newest 100": ({}, ArtifactFilter()),
        "by type": ({"type": "signal"}, ArtifactFilter(type="signal")),
        "by symbol": ({"symbol": "S7"}, ArtifactFilter(symbol="S7")),
        "by run": ({"execution_id": run}, ArtifactFilter(execution_id=run)),
        "by day": ({"date": mid.isoformat()}, ArtifactFilter(date=mid)),
        "by month": ({"start": month[0].isoformat(), "end": month[1].isoformat()},
                     ArtifactFilter(start=month[0], end=month[1])),
        "by symbol and month": (
            {"symbol": "S7", "start": month[0].isoformat(), "end": month[1].isoformat()},
            ArtifactFilter(symbol="S7", start=month[0], end=month[1])),
        "grouped by run": ({"group_by": "execution_id"}, ArtifactFilter()),
    }


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def list_figure(name: str, url: str, root: Path, rows: int, repeat: int) -> Figure:
    """p95 of GET /api/artifacts (100 rows and the total) over ``rows`` rows, 9 kinds of query."""
    fill_seconds = fill(url, rows)
    env = {"DATABASE_URL": url, "TRADING_DATA_DIR": str(root / "browser-data")}
    requests = _requests(rows)
    bare = ArtifactQueries(ArtifactDatabase(url=url, auto_migrate_sqlite=False))
    with TestClient(create_app(env)) as client:
        def get(params: dict[str, Any]) -> dict[str, Any]:
            response = client.get("/api/artifacts", params={"limit": 100, **params})
            if response.status_code != 200:
                raise RuntimeError(f"GET /api/artifacts {params}: {response.text}")
            return response.json()

        second = {"cursor": get({})["next_cursor"]}  # page 2 of the newest, by keyset
        requests["page 2 (cursor)"] = (second, ArtifactFilter())
        found = {label: get(params)["total"] for label, (params, _) in requests.items()}  # warm
        app_times = [_timed(lambda p=params: get(p))
                     for _ in range(repeat) for params, _ in requests.values()]
    cursor = Cursor.decode(second["cursor"])

    def bare_call(label: str, where: ArtifactFilter) -> None:
        bare.page(where, 100, cursor if label == "page 2 (cursor)" else None)
        bare.count(where)

    for label, (_, where) in requests.items():
        bare_call(label, where)
    bare_times = [_timed(lambda lw=(label, where): bare_call(*lw))
                  for _ in range(repeat) for label, (_, where) in requests.items()]
    bare.database.dispose()
    value = p95(app_times) * 1000
    return Figure(
        f"list endpoint (100 rows + total), {rows:,} rows, {name}: p95 "
        f"(p50 {median(app_times) * 1000:.1f} ms)",
        value, "ms", "the same page + COUNT queries without the app, p95",
        p95(bare_times) * 1000, f"<= {LIST_TARGET_MS:g} ms", value <= LIST_TARGET_MS,
        f"{len(requests)} queries x {repeat} ({', '.join(requests)}); totals "
        f"{min(found.values()):,} to {max(found.values()):,}; filled in {fill_seconds:.0f} s",
    )


# -- the image endpoint ------------------------------------------------------------------------


def image_figure(root: Path, repeat: int, png: bytes) -> Figure:
    """p95 of GET /api/artifacts/{id}/image from the local folder (hash checked)."""
    from trading_assets.models import ChartImage, Timeframe

    data = root / "browser-images"
    url = f"sqlite:///{data / 'artifacts.db'}"
    objects = LocalObjectStore(root=str(data / "objects"))  # the folder the app is configured for
    database = ArtifactDatabase(url=url)
    store = ArtifactStore(database, objects)
    chart = ChartImage(symbol="BENCH", as_of=START.date(), timeframe=Timeframe.DAILY, png=png,
                       width=1400, height=1000, bars_shown=130, indicators=["sma_20"])
    records = [
        store.write(chart, asset_name="daily_chart", symbol="BENCH",
                    partition_key=f"{START.date()}|BENCH", partition_date=START.date(),
                    job_name="bench", run_id=f"run-{n}", step_key="daily_chart")
        for n in range(20)
    ]
    database.dispose()
    with TestClient(create_app({"TRADING_DATA_DIR": str(data)})) as client:
        def get(artifact_id: int | None) -> None:
            response = client.get(f"/api/artifacts/{artifact_id}/image")
            if response.status_code != 200 or len(response.content) != len(png):
                raise RuntimeError(f"image {artifact_id}: {response.status_code}")

        for record in records:
            get(record.id)  # warm: the page cache holds the files, as on a busy server
        app_times = [_timed(lambda i=r.id: get(i)) for _ in range(repeat) for r in records]
    engine = create_database_engine(url)

    def bare(artifact_id: int | None, uri: str) -> None:
        with engine.connect() as conn:
            conn.execute(sa.select(artifacts).where(artifacts.c.id == artifact_id)).one()
        objects.get(uri)

    bare_times = [_timed(lambda r=r: bare(r.id, r.object_uri))
                  for _ in range(repeat) for r in records]
    engine.dispose()
    value = p95(app_times) * 1000
    return Figure(
        f"image endpoint, local folder, {len(png) / 1024:.0f} KiB PNG: p95 "
        f"(p50 {median(app_times) * 1000:.1f} ms)",
        value, "ms", "bare select + read of the same row and file, p95",
        p95(bare_times) * 1000, f"<= {IMAGE_TARGET_MS:g} ms", value <= IMAGE_TARGET_MS,
        f"{len(records)} charts x {repeat}; sha256 checked on every request",
    )


def figures(root: Path, rows: int, repeat: int, png: bytes, *, with_postgres: bool) -> (
    list[Figure]
):
    found = [list_figure("SQLite", f"sqlite:///{root / 'browser-rows.db'}", root, rows, repeat)]
    if with_postgres:
        with postgres_database() as url:
            found.append(list_figure("PostgreSQL", url, root, rows, repeat))
    found.append(image_figure(root, repeat, png))
    return found
