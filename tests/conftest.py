"""Shared fixtures: an isolated data folder and Dagster instance per test."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

# A closed session with more than a year of history before it, far from holidays.
TRADING_DAY = dt.date(2025, 6, 2)


@pytest.fixture(scope="session")
def shared_mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    # A new MLflow SQLite store runs ~140 migrations (5-15 s): graph tests share one per session,
    # created on first use. tests/tracking gives each test its own store.
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def data_env(tmp_path: Path, shared_mlflow_uri: str) -> dict[str, str]:
    """Environment for resources_from_environment: everything under a temp folder but MLflow."""
    return {"TRADING_DATA_DIR": str(tmp_path / "data"), "MLFLOW_TRACKING_URI": shared_mlflow_uri}


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """An in-memory instance: the assets' behaviour, not Dagster's storage, is under test (a third
    of the time of a SQLite one per run). Tests that need a stored instance use
    ``stored_instance``."""
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture
def stored_instance() -> Iterator[dg.DagsterInstance]:
    """A SQLite instance in a temporary folder (schedules and sensors need an instance ref)."""
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture(autouse=True)
def _no_leaked_defs_state_storage(request: pytest.FixtureRequest) -> Iterator[None]:
    from dagster._core.storage.defs_state.base import DefsStateStorage

    before = DefsStateStorage.get()
    yield
    after = DefsStateStorage.get()
    assert after is before, f"{request.node.nodeid} leaked a DefsStateStorage"


# Files of a minute or more, handed to pytest-xdist's workers first (it schedules files in
# collection order): otherwise they are collected last (tests/test_*.py sort after the folders) and
# one worker ends the suite alone on them.
_SLOW_FIRST = (
    "tests/test_ranged_runs.py",
    "tests/ibkr/test_orders.py",
    "tests/test_cli.py",
    "tests/test_crash_recovery.py",
    "tests/test_first_run_races.py",
    "tests/test_secrets.py",
    "tests/evaluation/test_assets.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::")[0]
        return _SLOW_FIRST.index(path) if path in _SLOW_FIRST else len(_SLOW_FIRST)

    items.sort(key=rank)  # stable: each file keeps its own order
