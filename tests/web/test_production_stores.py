"""The API on the production stores: PostgreSQL (tests/servers.py's throwaway database) and an
S3-protocol server (moto), written through ArtifactStore; and an object store that is down."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from sql.migrate import upgrade
from tests.io_managers import examples
from tests.servers import S3Server, free_port, throwaway_postgres_database, unique_bucket
from trading_assets.web.app import create_app
from trading_assets.web.queries import GRAPH_ORDER
from trading_assets.web.stores import open_stores

RUN = "run-production-1"
KEY = "2025-01-02|TSLA"
VALUES = {
    "market_data": examples.market_data(),
    "daily_chart": examples.chart(),
    "llm_analysis": examples.llm(),
    "trading_signal": examples.signal(),
    "order": examples.order(),
    "portfolio": examples.portfolio(),
}


@dataclass(frozen=True)
class Stored:
    env: dict[str, str]
    ids: dict[str, int]  # asset -> artifact id
    hashes: dict[str, str]


def _write_all(env: dict[str, str], run_id: str = RUN) -> tuple[dict[str, int], dict[str, str]]:
    stores = open_stores(env)
    ids, hashes = {}, {}
    try:
        for asset, value in VALUES.items():
            record = stores.artifacts.write(
                value, asset_name=asset, symbol="TSLA", partition_key=KEY,
                partition_date=examples.DAY, job_name="trading_signals_job", run_id=run_id,
                step_key=asset,
            )
            assert record.id is not None
            ids[asset], hashes[asset] = record.id, record.content_hash
    finally:
        stores.close()
    return ids, hashes


NEXT_DAY = examples.DAY + dt.timedelta(days=1)


def _write_next_day(env: dict[str, str]) -> None:
    """A signal and an order of the next day, from another run: something to filter out."""
    stores = open_stores(env)
    try:
        for asset, value in (("trading_signal", examples.signal(NEXT_DAY)),
                             ("order", examples.order(NEXT_DAY))):
            stores.artifacts.write(
                value, asset_name=asset, symbol="TSLA", partition_key=f"{NEXT_DAY}|TSLA",
                partition_date=NEXT_DAY, job_name="trading_signals_job", run_id="run-production-2",
                step_key=asset,
            )
    finally:
        stores.close()


@pytest.fixture(scope="module")
def production(
    tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server
) -> Iterator[Stored]:
    with throwaway_postgres_database("browser_test") as url:
        upgrade(url)  # `trading-signals db upgrade`, as the compose stack's dagster-init runs it
        env = {
            "TRADING_DATA_DIR": str(tmp_path_factory.mktemp("production")),
            "DATABASE_URL": url,
            **s3_server.minio_env(unique_bucket("browser")),
        }
        ids, hashes = _write_all(env)
        _write_next_day(env)
        yield Stored(env, ids, hashes)


@pytest.fixture(scope="module")
def client(production: Stored) -> Iterator[TestClient]:
    with TestClient(create_app(production.env)) as test_client:
        yield test_client


def _pages(client: TestClient, **params: object) -> tuple[list[int], int]:
    """Every id the list returns, page by page (3 a page), and its total."""
    ids: list[int] = []
    query: dict[str, object] = {**params, "limit": 3}
    while True:
        page = client.get("/api/artifacts", params=query).json()
        ids += [a["id"] for a in page["artifacts"]]
        if page["next_cursor"] is None:
            return ids, page["total"]
        query["cursor"] = page["next_cursor"]


def test_the_list_filters_and_pages_on_postgresql(client: TestClient, production: Stored) -> None:
    body = client.get("/api/artifacts", params={"group_by": "execution_id"}).json()
    assert body["total"] == len(VALUES) + 2
    assert list(body["grouped"]) == ["run-production-2", RUN]
    assert [a["id"] for a in body["grouped"][RUN]] == sorted(production.ids.values(), reverse=True)
    assert body["artifacts"][0]["object_uri"].startswith("s3://browser-")
    charts = client.get("/api/artifacts", params={"type": "chart", "symbol": "tsla"}).json()
    assert [a["id"] for a in charts["artifacts"]] == [production.ids["daily_chart"]]
    everything = [a["id"] for a in body["artifacts"]]
    assert _pages(client) == (everything, 8)
    # A range of days runs day by day on PostgreSQL (queries.py): the same rows, in order.
    assert _pages(client, start=str(examples.DAY), end=str(examples.DAY)) == (everything[2:], 6)
    assert _pages(client, start=str(NEXT_DAY)) == (everything[:2], 2)
    assert _pages(client, end=str(NEXT_DAY), type="signal")[1] == 2
    assert _pages(client, start="2024-12-01", end=str(examples.DAY - dt.timedelta(days=1))) == (
        [], 0
    )
    # JSONB columns come back as objects, timestamps in UTC.
    signal = client.get(f"/api/artifacts/{production.ids['trading_signal']}").json()
    assert signal["signal_data"]["action"] == "BUY" and signal["created_at"].endswith("Z")


def test_the_image_and_downloads_come_from_s3_with_their_hash_checked(
    client: TestClient, production: Stored
) -> None:
    image = client.get(f"/api/artifacts/{production.ids['daily_chart']}/image")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content == examples.chart().png
    assert hashlib.sha256(image.content).hexdigest() == production.hashes["daily_chart"]
    parquet = client.get(f"/api/artifacts/{production.ids['market_data']}/download")
    assert parquet.headers["content-type"] == "application/vnd.apache.parquet"
    assert hashlib.sha256(parquet.content).hexdigest() == production.hashes["market_data"]


def test_stats_and_a_runs_artifacts_on_postgresql(client: TestClient) -> None:
    stats = client.get("/api/artifacts/stats/summary").json()
    assert stats["total"] == 8 and stats["by_symbol"] == {"TSLA": 8}
    assert stats["signals_by_action"] == {"BUY": 2} and stats["runs"] == 2
    body = client.get(f"/api/runs/{RUN}/artifacts").json()
    order = [a for a in GRAPH_ORDER if a in VALUES]
    assert [a["step_name"] for a in body["artifacts"]] == order
    assert body["status"] == "unknown"  # this test has no Dagster instance


def test_pages_render_from_postgresql_and_s3(client: TestClient, production: Stored) -> None:
    for asset, text in (("daily_chart", 'id="image"'), ("llm_analysis", "Analyse TSLA daily"),
                        ("trading_signal", "uptrend above SMA20"), ("order", "BUY HIGH"),
                        ("portfolio", "99,001.00"), ("market_data", "Latest bars")):
        page = client.get(f"/artifacts/{production.ids[asset]}")
        assert page.status_code == 200 and text in page.text, asset
    assert client.get("/symbols/TSLA/chart.png").content.startswith(b"\x89PNG")


def test_an_object_store_that_is_down_is_503_naming_it_without_its_secret(
    production: Stored,
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    env = {**production.env, "MINIO_ENDPOINT": endpoint, "MINIO_MAX_ATTEMPTS": "1"}
    with TestClient(create_app(env)) as client:
        response = client.get(f"/api/artifacts/{production.ids['daily_chart']}/image")
        listing = client.get("/api/artifacts")  # the database still answers
    assert response.status_code == 503
    error = response.json()["error"]
    assert error.startswith(f"the object store s3://{env['MINIO_BUCKET']} at {endpoint} does "
                            "not answer")
    assert "MINIO_ENDPOINT" in error
    assert env["MINIO_SECRET_KEY"] not in response.text
    assert listing.status_code == 200 and listing.json()["total"] == 8
