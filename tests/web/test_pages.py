"""The server-rendered pages over a real pipeline run: the list grouped by run, a detail page per
artifact type, the symbol page; and what a page says when the stored value is unusual."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from io_managers.artifact_store import ArtifactStore
from tests.io_managers import examples
from tests.web.conftest import Pipeline
from trading_assets.web.app import create_app
from trading_assets.web.stores import open_stores

HTML = {"accept": "text/html"}


@pytest.fixture(scope="module")
def client(pipeline: Pipeline) -> Iterator[TestClient]:
    app = create_app(pipeline.env, instance_factory=pipeline.instance)
    with TestClient(app) as test_client:
        yield test_client


def _rows(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    return client.get("/api/artifacts", params={"limit": 1000, **params}).json()["artifacts"]


def _id(client: TestClient, step: str, symbol: str = "TSLA") -> int:
    return next(r["id"] for r in _rows(client, symbol=symbol) if r["step_name"] == step)


def _page(client: TestClient, path: str, **params: Any) -> str:
    response = client.get(path, params=params, headers=HTML)
    assert response.status_code == 200, response.text[:2000]
    return response.text


def _listed(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<td><a href="/artifacts/(\d+)">', page)]


def test_the_list_groups_rows_by_run_with_job_partition_status_and_links(
    client: TestClient, pipeline: Pipeline
) -> None:
    page = _page(client, "/")
    assert sorted(_listed(page)) == sorted(r["id"] for r in _rows(client))
    run_id = pipeline.runs["TSLA"]
    header = page[page.index(f"run {run_id[:8]}") - 400: page.index(f"run {run_id[:8]}") + 400]
    assert f'href="http://127.0.0.1:3000/runs/{run_id}"' in header
    assert ">SUCCESS<" in header and "trading_signals_job" in header
    assert "2025-06-02|TSLA" in header and "UTC" in header
    assert page.count('<section class="run">') == 5


def test_filters_narrow_the_list(client: TestClient, pipeline: Pipeline) -> None:
    charts = _page(client, "/", type="chart", view="list")
    assert sorted(_listed(charts)) == sorted(r["id"] for r in _rows(client, type="chart"))
    assert len(_listed(charts)) == 4 and "<strong id=\"total\">4</strong>" in charts
    nvda = _page(client, "/", symbol="nvda", start="2025-06-02", end="2025-06-02", type="")
    assert len(_listed(nvda)) == 8 and 'value="NVDA"' in nvda
    run = _page(client, "/", execution_id=pipeline.runs["TSLA"])
    assert len(_listed(run)) == 7
    older = _page(client, "/", limit=5, view="list")
    assert len(_listed(older)) == 5
    link = html.unescape(re.search(r'id="older" href="([^"]+)"', older).group(1))
    second = client.get(link, headers=HTML).text
    assert set(_listed(second)).isdisjoint(_listed(older)) and len(_listed(second)) == 5
    bad = client.get("/", params={"type": "picture"}, headers=HTML)
    assert bad.status_code == 422 and "type: Input should be" in html.unescape(bad.text)


def test_a_chart_page_shows_the_chart_full_size(client: TestClient) -> None:
    chart = _id(client, "daily_chart")
    page = _page(client, f"/artifacts/{chart}")
    assert f'<img id="image" src="/api/artifacts/{chart}/image"' in page
    assert "sma_200" in page and "1400" in page and "Dagster run" in page and "MLflow run" in page
    assert f'href="/artifacts/{_id(client, "market_data")}"' in page  # read
    assert f'href="/artifacts/{_id(client, "llm_analysis")}"' in page  # read by


def test_the_llm_page_shows_the_exact_prompt_both_images_and_the_costs(
    client: TestClient,
) -> None:
    llm = client.get(f"/api/artifacts/{_id(client, 'llm_analysis')}").json()
    page = html.unescape(_page(client, f"/artifacts/{llm['id']}"))
    assert llm["prompt"] in page and llm["response"] in page
    for chart in ("daily_chart", "weekly_chart"):
        assert f'src="/api/artifacts/{_id(client, chart)}/image"' in page
    assert "offline-rules-v1" in page and "tokens" in page and "$0.0000" in page
    assert "cached</th><td colspan=\"3\">no" in page


def test_signal_order_portfolio_and_market_data_pages(client: TestClient) -> None:
    signal = client.get(f"/api/artifacts/{_id(client, 'trading_signal')}").json()
    page = html.unescape(_page(client, f"/artifacts/{signal['id']}"))
    data = signal["signal_data"]
    assert f'<div class="action">{data["action"]}</div>' in page
    assert data["reasoning"] in page and all(f in page for f in data["key_factors"])
    assert f"{data['entry_price']:,.2f}" in page
    order = client.get(f"/api/artifacts/{_id(client, 'order')}").json()
    page = html.unescape(_page(client, f"/artifacts/{order['id']}"))
    assert order["artifact_metadata"]["reason"] in page
    if order["artifact_metadata"]["placed"]:
        assert "limit entry" in page and "stop loss" in page and "take profit" in page
    page = _page(client, f"/artifacts/{_id(client, 'portfolio')}")
    assert "cash" in page and "Positions" in page and "$" in page
    page = _page(client, f"/artifacts/{_id(client, 'market_data')}")
    assert "Latest bars" in page and "2025-06-02" in page and "synthetic" in page


def test_scorecard_and_outcome_pages(client: TestClient) -> None:
    (card,) = _rows(client, type="scorecard")
    page = _page(client, f"/artifacts/{card['id']}")
    assert card["artifact_metadata"]["verdict"] in html.unescape(page)
    for plot in _rows(client, type="plot"):
        assert f'src="/api/artifacts/{plot["id"]}/image"' in page
    outcome = _rows(client, type="outcome")[0]
    page = _page(client, f"/artifacts/{outcome['id']}")
    assert "session(s) later" in page


def test_the_symbol_page_draws_signals_on_prices_with_the_latest_scorecard(
    client: TestClient,
) -> None:
    page = _page(client, "/symbols/tsla")
    assert '<img id="signal-chart" src="/symbols/TSLA/chart.png"' in page
    assert f'href="/artifacts/{_id(client, "trading_signal")}"' in page
    (card,) = _rows(client, type="scorecard")
    assert f"scorecard #{card['id']}" in page
    png = client.get("/symbols/TSLA/chart.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    missing = client.get("/symbols/ZZZZ", headers=HTML)
    assert missing.status_code == 404 and "no signal or market data of ZZZZ" in missing.text
    assert client.get("/symbols/not|a|symbol", headers=HTML).status_code == 422


def test_an_unknown_page_is_a_404_page(client: TestClient) -> None:
    response = client.get("/artifacts/999999", headers=HTML)
    assert response.status_code == 404 and "text/html" in response.headers["content-type"]
    assert "no artifact #999999" in response.text
    assert client.get("/nowhere").json()["error"].startswith("no such page or endpoint")


# -- stores written by hand: what the pipeline rarely produces -------------------------------


def _write(store: ArtifactStore, value: object, asset: str, run_id: str = "run-1") -> int:
    record = store.write(
        value, asset_name=asset, symbol="TSLA", partition_key="2025-01-02|TSLA",
        partition_date=examples.DAY, job_name="trading_signals_job", run_id=run_id,
        step_key=asset,
    )
    assert record.id is not None
    return record.id


def test_a_cached_analysis_says_where_it_came_from_and_an_unpriced_one_says_so(
    tmp_path: Path,
) -> None:
    env = {"TRADING_DATA_DIR": str(tmp_path)}
    stores = open_stores(env)
    first = _write(stores.artifacts, examples.llm(), "llm_analysis")
    cached = examples.llm().model_copy(update={
        "cached": True, "cost_usd": 0.0, "priced": False,
        "cached_from": f"artifact #{first} (run run-1)",
    })
    second = _write(stores.artifacts, cached, "llm_analysis", run_id="run-2")
    stores.close()
    with TestClient(create_app(env)) as client:
        page = _page(client, f"/artifacts/{second}")
    assert f'<a id="cached-from" href="/artifacts/{first}">cached from #{first}</a>' in page
    assert "not priced" in page
    assert page.count("not found in the store") == 2  # the example's image hashes are made up


def test_an_object_changed_after_it_was_written_is_refused_with_the_fix(tmp_path: Path) -> None:
    env = {"TRADING_DATA_DIR": str(tmp_path)}
    stores = open_stores(env)
    chart = _write(stores.artifacts, examples.chart(), "daily_chart")
    uri = stores.queries.get(chart)["object_uri"]
    stores.close()
    Path(uri.removeprefix("file://")).write_bytes(examples.png(10, 10))
    with TestClient(create_app(env)) as client:
        response = client.get(f"/api/artifacts/{chart}/image")
        assert response.status_code == 500
        error = response.json()["error"]
        assert error.startswith(f"artifact #{chart} (daily_chart, partition 2025-01-02|TSLA)")
        assert "changed since it was written" in error and "re-materialize" in error
        Path(uri.removeprefix("file://")).unlink()
        assert "its object is missing" in client.get(f"/api/artifacts/{chart}/download").text
