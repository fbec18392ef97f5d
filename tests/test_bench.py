"""A smoke run of the benchmark at tiny sizes: every figure is produced and printable.

Timings are never asserted here; `make bench` is where the targets are measured.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import pipeline, storage
from bench.run import _sample_values, table
from bench.stats import Figure, p95


def test_p95_is_the_nearest_rank() -> None:
    assert p95([1.0]) == 1.0
    assert p95([float(i) for i in range(1, 101)]) == 95.0
    assert p95([1.0, 2.0, 3.0]) == 3.0


def test_chart_figures_compare_both_charts_with_bare_mplfinance() -> None:
    figures = pipeline.chart_figures(repeat=1)
    assert [f.name.split(",")[0] for f in figures] == ["daily chart render", "weekly chart render"]
    assert all(f.value and f.value > 0 and f.baseline_value for f in figures)


def test_one_partition_through_dagster_and_directly(tmp_path: Path) -> None:
    figure = pipeline.partition_figure(tmp_path, repeat=1)
    assert figure.value and figure.baseline_value and figure.met is not None


def test_storage_figures_on_sqlite(tmp_path: Path) -> None:
    with storage.backends(tmp_path, with_postgres=False) as (backend,):
        figures = storage.write_load_figures(backend, _sample_values(), rounds=1)
        figures += storage.query_figures(backend, rows=1_500, repeat=2)
    names = [f.name for f in figures]
    assert any(n.startswith("artifact write") for n in names)
    assert any(n.startswith("artifact load") for n in names)
    assert sum(n.startswith("query") for n in names) == 3
    # The queries find what the generated table holds: a run is one partition's 7 artifacts.
    by_run = next(f for f in figures if "by run" in f.name)
    assert by_run.note.startswith("7 rows returned")
    assert all(f.baseline_value is not None for f in figures)


def test_table_lists_every_figure_with_its_baseline() -> None:
    figures = [
        Figure("a", 0.25, "s", "floor", 0.1, "<= 0.4 s", True),
        Figure("b", None, "ms", "-", None, "<= 10 ms", None, "not measured: no server"),
    ]
    text = table(figures)
    assert "0.25 s" in text and "0.1 s  (floor)" in text and "not measured: no server" in text
    json.dumps([f.as_dict() for f in figures])


@pytest.mark.skipif(storage.postgres_available() is not None, reason="no PostgreSQL server")
def test_storage_figures_on_postgres_and_s3(tmp_path: Path) -> None:
    with storage.backends(tmp_path, with_postgres=True) as found:
        backend = found[1]
        figures = storage.write_load_figures(backend, _sample_values(), rounds=1)
        figures += storage.query_figures(backend, rows=1_500, repeat=2)
    assert len(figures) == 5
    assert next(f for f in figures if "by run" in f.name).note.startswith("7 rows returned")
