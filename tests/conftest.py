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
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture(autouse=True)
def _no_leaked_defs_state_storage(request: pytest.FixtureRequest) -> Iterator[None]:
    from dagster._core.storage.defs_state.base import DefsStateStorage

    before = DefsStateStorage.get()
    yield
    after = DefsStateStorage.get()
    assert after is before, f"{request.node.nodeid} leaked a DefsStateStorage"
