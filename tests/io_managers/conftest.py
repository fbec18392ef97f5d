"""Shared fixtures of the IO manager tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from io_managers.artifact_store import ArtifactStore
from resources.database import ArtifactDatabase
from resources.object_store import LocalObjectStore


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    """An ArtifactStore on SQLite and a local folder under the test's tmp_path."""
    return ArtifactStore(
        ArtifactDatabase(url=f"sqlite:///{tmp_path}/a.db"),
        LocalObjectStore(root=str(tmp_path / "objects")),
    )
