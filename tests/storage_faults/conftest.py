"""Real PostgreSQL and S3 servers behind fault proxies the tests switch (see tests/faults.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest
import sqlalchemy as sa

from sql.migrate import upgrade
from tests.faults import FaultProxy, fault_proxy
from tests.servers import PG_HOST, PG_PORT, S3Server, postgres_url, s3_server, unique_bucket

__all__ = ["postgres_url", "s3_server"]

# Quick to give up, so an outage test takes seconds: 2 attempts, a 2 s timeout each.
FAST_STORAGE = {
    "STORAGE_WRITE_ATTEMPTS": "2",
    "STORAGE_RETRY_BASE_SECONDS": "0.05",
    "STORAGE_RETRY_MAX_SECONDS": "0.1",
    "STORAGE_WRITE_TIMEOUT_SECONDS": "2",
    "MINIO_MAX_ATTEMPTS": "1",
}


@dataclass(frozen=True)
class FaultyStores:
    """The pipeline's environment with PostgreSQL and S3 reached through switchable proxies."""

    env: dict[str, str]
    database: FaultProxy
    objects: FaultProxy
    bucket: str


@pytest.fixture
def faulty(
    tmp_path: Path, postgres_url: str, s3_server: S3Server, shared_mlflow_uri: str
) -> Iterator[FaultyStores]:
    upgrade(postgres_url)
    s3 = urlparse(s3_server.endpoint_url)
    assert s3.hostname and s3.port
    bucket = unique_bucket("faults")
    with fault_proxy(PG_HOST, PG_PORT) as db_proxy, fault_proxy(s3.hostname, s3.port) as s3_proxy:
        proxied_db = sa.make_url(postgres_url).set(port=db_proxy.port)
        env = {
            "TRADING_DATA_DIR": str(tmp_path / "data"),
            "MLFLOW_TRACKING_URI": shared_mlflow_uri,
            "DATABASE_URL": proxied_db.render_as_string(hide_password=False),
            **s3_server.minio_env(bucket),
            "MINIO_ENDPOINT": f"http://127.0.0.1:{s3_proxy.port}",
            **FAST_STORAGE,
        }
        yield FaultyStores(env, db_proxy, s3_proxy, bucket)
