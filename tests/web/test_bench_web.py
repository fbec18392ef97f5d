"""A smoke run of the browser's benchmark figures at tiny sizes (tests/test_bench.py's way):
every figure is produced beside its baseline. Timings are never asserted here."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from bench import storage, web
from resources.database import ArtifactDatabase
from tests.io_managers import examples
from tests.servers import unavailable
from trading_assets.web.queries import ArtifactFilter, ArtifactQueries


def test_the_bulk_fill_writes_rows_the_browser_pages_through(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rows.db'}"
    web.fill(url, 1_400)
    queries = ArtifactQueries(ArtifactDatabase(url=url))
    try:
        assert queries.count(ArtifactFilter()) == 1_400
        newest = queries.page(ArtifactFilter(type="signal"), 5)
        assert [r["id"] for r in newest.rows] == [1_398, 1_391, 1_384, 1_377, 1_370]  # n + 1
        assert newest.rows[0]["created_at"] == web.row_time(1_397)  # the fill's own clock
        with sa.create_engine(url).connect() as conn:
            indexes = {r[1] for r in conn.exec_driver_sql("PRAGMA index_list(artifacts)")}
        assert {"ix_artifacts_created_at_id", "ix_artifacts_type_created_at_id"} <= indexes
    finally:
        queries.database.dispose()


def test_browser_figures_on_sqlite(tmp_path: Path) -> None:
    figures = web.figures(tmp_path, rows=1_500, repeat=2, png=examples.png(), with_postgres=False)
    names = [f.name for f in figures]
    assert names[0].startswith("list endpoint (100 rows + total), 1,500 rows, SQLite: p95")
    assert names[1].startswith("image endpoint, local folder")
    assert all(f.value and f.baseline_value and f.met is not None for f in figures)
    assert "9 queries x 2" in figures[0].note


def test_browser_list_figure_on_postgres(tmp_path: Path) -> None:
    missing = storage.postgres_available()
    if missing is not None:
        unavailable(missing)  # skips locally, fails under CI=true
    with storage.postgres_database() as url:
        figure = web.list_figure("PostgreSQL", url, tmp_path, rows=1_500, repeat=2)
    assert figure.value and figure.baseline_value and "totals 7 to 1,500" in figure.note
