"""The production stack's pieces as real servers: PostgreSQL for the artifacts and the Dagster
instance, moto for S3, and the instance built from docker/dagster.yaml (see tests/servers.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from sql.migrate import upgrade
from tests.servers import (
    S3Server,
    postgres_url,
    s3_server,
    throwaway_postgres_database,
    unique_bucket,
)

__all__ = ["postgres_url", "s3_server"]

DOCKER_DIR = Path(__file__).resolve().parents[2] / "docker"


@pytest.fixture
def artifacts_url(postgres_url: str) -> str:
    """A PostgreSQL artifacts database, migrated as `trading-signals db upgrade` does."""
    upgrade(postgres_url)
    return postgres_url


@pytest.fixture
def bucket() -> str:
    return unique_bucket("artifacts")


@pytest.fixture
def production_env(
    tmp_path: Path, artifacts_url: str, s3_server: S3Server, bucket: str
) -> dict[str, str]:
    """The pipeline's environment as docker-compose.yml sets it: PostgreSQL and S3."""
    return {
        "TRADING_DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": artifacts_url,
        **s3_server.minio_env(bucket),
    }


def dagster_postgres_env(url: str) -> dict[str, str]:
    """The DAGSTER_POSTGRES_* variables docker/dagster.yaml reads, for a database URL."""
    parsed = sa.make_url(url)
    return {
        "DAGSTER_POSTGRES_HOST": parsed.host or "127.0.0.1",
        "DAGSTER_POSTGRES_PORT": str(parsed.port or 5432),
        "DAGSTER_POSTGRES_USER": parsed.username or "postgres",
        "DAGSTER_POSTGRES_PASSWORD": parsed.password or "",
        "DAGSTER_POSTGRES_DB": parsed.database or "",
    }


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A DAGSTER_HOME holding docker/dagster.yaml, pointed at a throwaway PostgreSQL database."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(DOCKER_DIR / "dagster.yaml", home / "dagster.yaml")
    with throwaway_postgres_database("dagster_test") as url:
        for name, value in dagster_postgres_env(url).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        yield home


@pytest.fixture
def production_instance(dagster_home: Path) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        yield instance
