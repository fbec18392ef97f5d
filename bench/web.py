"""Figures of the artifact browser: the list endpoint over a million rows, the image endpoint.

The rows are the store's big table (bench/storage.py: generated in the database, indexed after,
no statement timeout), the same one the store's queries measure; each figure is measured through
the application (FastAPI's TestClient: routing, validation, the queries, JSON) beside the bare SQL.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from bench import storage
from bench.stats import Figure, median, p95
from bench.storage import ASSETS, START, SYMBOLS
from bench.storage import fill as fill  # re-exported: the browser's tests fill through here
from bench.storage import row_time as row_time
from io_managers.artifact_store import ArtifactStore
from resources.database import ArtifactDatabase
from resources.object_store import LocalObjectStore
from sql.engine import create_database_engine
from sql.schema import artifacts
from trading_assets.web.app import create_app
from trading_assets.web.queries import ArtifactFilter, ArtifactQueries, Cursor

LIST_TARGET_MS = 50.0
IMAGE_TARGET_MS = 30.0


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
    """p95 of GET /api/artifacts (100 rows and the total) over ``rows`` rows, 9 kinds of query;
    ``url`` is filled first unless an earlier figure of this process filled it."""
    fill_seconds, shared = storage.filled(url, rows)
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
        f"{min(found.values()):,} to {max(found.values()):,}; "
        f"{storage.fill_note(fill_seconds, shared)}",
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
    sqlite = storage.rows_url(root, rows, postgres=False)
    found = [list_figure("SQLite", sqlite, root, rows, repeat)]
    if with_postgres:
        postgres = storage.rows_url(root, rows, postgres=True)
        found.append(list_figure("PostgreSQL", postgres, root, rows, repeat))
    found.append(image_figure(root, repeat, png))
    return found
