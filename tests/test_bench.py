"""A smoke run of the benchmark at tiny sizes: every figure is produced and printable.

Timings are never asserted here; `make bench` is where the targets are measured.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from bench import evaluation, pipeline, storage
from bench.run import _sample_values, table
from bench.stats import Figure, p95
from io_managers.artifact_store import ArtifactStore
from tests.servers import unavailable
from trading_assets.environment import resources_from_environment
from trading_assets.models import OrderDecision
from trading_assets.tracking.record import TRACKED_ASSETS


def test_p95_is_the_nearest_rank() -> None:
    assert p95([1.0]) == 1.0
    assert p95([float(i) for i in range(1, 101)]) == 95.0
    assert p95([1.0, 2.0, 3.0]) == 3.0


def test_chart_figures_compare_both_charts_with_the_plotly_kaleido_baseline() -> None:
    figures = pipeline.chart_figures(repeat=1)
    assert [f.name.split(",")[0] for f in figures] == ["daily chart render", "weekly chart render"]
    assert all(f.value and f.value > 0 and f.baseline_value for f in figures)


# Fixed, closed sessions: on the first the offline analyst holds, on the second it buys, so both
# of the order step's branches run. Nothing here depends on today's date or calendar.
HOLD_DAY, BUY_DAY = dt.date(2025, 4, 22), dt.date(2025, 4, 23)


def test_scoring_figures_time_score_history_beside_pandas_and_the_scorecard() -> None:
    # The figure asserts inside that score_history and the pandas baseline agree.
    scoring, scorecard = evaluation.scoring_figures(symbols=2, years=1)
    assert scoring.name.startswith("score 2 symbols x 1 years")
    assert scoring.value and scoring.baseline_value and scoring.met is not None
    assert "shift" in scoring.baseline and scoring.note.startswith("504 signals")
    assert scorecard.name.startswith("scorecard of 504 outcomes, 2000 bootstrap resamples")
    assert scorecard.value and scorecard.baseline_value == scoring.value


def test_one_partition_through_dagster_and_directly(tmp_path: Path) -> None:
    figure = pipeline.partition_figure(tmp_path, repeat=1, last=BUY_DAY)
    assert figure.value and figure.baseline_value and figure.met is not None
    assert "checks" in figure.note


def test_the_direct_partition_stores_all_seven_artifacts_and_reads_them_back(
    tmp_path: Path,
) -> None:
    assert pipeline.trading_days(2, last=BUY_DAY) == [HOLD_DAY, BUY_DAY]
    with pipeline.sandbox(tmp_path, "direct") as env:
        resources = resources_from_environment(env)
        store = ArtifactStore(resources["artifact_db"], resources["object_store"])
        for day, placed in ((HOLD_DAY, False), (BUY_DAY, True)):
            ids = pipeline._direct_partition(resources, "BENCH", day)
            key = f"{day.isoformat()}|BENCH"
            newest = [store.latest_record(asset, key) for asset in TRACKED_ASSETS]
            assert [r.id for r in newest] == ids
            assert all(r.mlflow_run_id for r in newest), "every row carries its MLflow run id"
            decision = store.load_latest("order", key)
            assert isinstance(decision, OrderDecision) and decision.placed is placed


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


def test_storage_figures_on_postgres_and_s3(tmp_path: Path) -> None:
    missing = storage.postgres_available()
    if missing is not None:
        unavailable(missing)  # skips locally, fails under CI=true
    with storage.backends(tmp_path, with_postgres=True) as found:
        backend = found[1]
        figures = storage.write_load_figures(backend, _sample_values(), rounds=1)
        figures += storage.query_figures(backend, rows=1_500, repeat=2)
    assert len(figures) == 5
    assert next(f for f in figures if "by run" in f.name).note.startswith("7 rows returned")


def test_the_pool_comparison_drops_only_the_pool_limit(tmp_path: Path) -> None:
    import yaml

    with pipeline.sandbox(tmp_path, "pools") as env:
        home = Path(env["DAGSTER_HOME"])
        kept = yaml.safe_load((home / "dagster.yaml").read_text())
        pipeline._without_pool_limits(home)
        changed = yaml.safe_load((home / "dagster.yaml").read_text())
        assert "pools" in kept["concurrency"] and "pools" not in changed["concurrency"]
        assert changed["concurrency"]["runs"] == kept["concurrency"]["runs"]
        assert pipeline.pool_waits(home) == (0, 0.0)
    # The project's own instance keeps its limit: only the sandbox copy changed.
    assert "pools" in yaml.safe_load((pipeline.ROOT / "dagster.yaml").read_text())["concurrency"]


def test_a_ranged_run_is_measured_per_partition_beside_the_direct_call(tmp_path: Path) -> None:
    from bench import ranged

    figure = ranged.ranged_figure(tmp_path, 2, direct_seconds=0.5)
    assert figure.value > 0 and figure.baseline_value == 0.5
    assert "Dagster/direct" in figure.name and "event-log entries" in (figure.note or "")
