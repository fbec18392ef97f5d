"""The read API over SQLite and the local folder, filled by a real pipeline run (tests/web/
conftest.py): every endpoint, the filters, keyset pagination, the errors, the token."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest
from fastapi.testclient import TestClient

from sql.schema import artifacts
from tests.conftest import TRADING_DAY
from tests.servers import free_port
from tests.web.conftest import Pipeline
from trading_assets.definitions import ASSETS, EVALUATION_ASSETS
from trading_assets.web.app import create_app
from trading_assets.web.queries import GRAPH_ORDER, UPSTREAM
from trading_assets.web.schemas import ArtifactDetail, ArtifactList, StatsSummary
from trading_assets.web.server import RedactTokens

COLUMNS = set(artifacts.c.keys())
TOKEN = "t0ken-for-the-tests-0123456789"


@pytest.fixture(scope="module")
def client(pipeline: Pipeline) -> Iterator[TestClient]:
    app = create_app(pipeline.env, instance_factory=pipeline.instance)
    with TestClient(app) as test_client:
        yield test_client


def _all(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/api/artifacts", params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    return response.json()


def _ids(body: dict[str, Any]) -> list[int]:
    return [a["id"] for a in body["artifacts"]]


def _row(client: TestClient, step: str, symbol: str = "TSLA") -> dict[str, Any]:
    (row,) = [a for a in _all(client, symbol=symbol)["artifacts"] if a["step_name"] == step]
    return row


def test_the_list_is_every_row_newest_first_with_every_column(client: TestClient) -> None:
    body = _all(client)
    ArtifactList.model_validate(body)
    # Two partitions of seven assets, their two outcomes, a scorecard and its two plots.
    assert body["total"] == len(body["artifacts"]) == 19
    assert body["next_cursor"] is None and "grouped" not in body
    keys = [(a["created_at"], a["id"]) for a in body["artifacts"]]
    assert keys == sorted(keys, reverse=True)
    for item in body["artifacts"]:
        assert set(item) == COLUMNS
        assert item["created_at"].endswith("Z") and "T" in item["created_at"]


def test_each_filter_narrows_the_list_and_total_counts_all_pages(
    client: TestClient, pipeline: Pipeline
) -> None:
    charts = _all(client, type="chart")
    assert charts["total"] == 4 and {a["type"] for a in charts["artifacts"]} == {"chart"}
    tsla = _all(client, symbol="tsla")  # symbols are case-insensitive, as on the command line
    assert tsla["total"] == 8 and {a["symbol"] for a in tsla["artifacts"]} == {"TSLA"}
    run = _all(client, execution_id=pipeline.runs["NVDA"])
    assert run["total"] == 7 and {a["symbol"] for a in run["artifacts"]} == {"NVDA"}
    assert _all(client, date=TRADING_DAY.isoformat())["total"] == 19  # the scorecard ends then
    assert _all(client, start="2025-06-03")["total"] == 0
    assert _all(client, start="2025-06-02", end="2025-06-02", type="signal")["total"] == 2
    # Blank parameters (a submitted form's empty fields) are no filter at all.
    assert _all(client, type="", symbol="", date="")["total"] == 19
    one = client.get("/api/artifacts", params={"type": "chart", "limit": 1}).json()
    assert one["total"] == 4 and len(one["artifacts"]) == 1 and one["next_cursor"]


def test_group_by_execution_id_groups_the_page_by_run_newest_run_first(
    client: TestClient, pipeline: Pipeline
) -> None:
    body = client.get("/api/artifacts", params={"group_by": "execution_id"}).json()
    ArtifactList.model_validate(body)
    grouped = body["grouped"]
    assert body["group_count"] == len(grouped) == 5  # 2 pipeline runs, 2 outcome runs, scorecard
    assert list(grouped)[0] == pipeline.scorecard_run
    assert sum(len(rows) for rows in grouped.values()) == len(body["artifacts"])
    for run_id, rows in grouped.items():
        assert {r["execution_id"] for r in rows} == {run_id}
    newest = [max(r["created_at"] for r in rows) for rows in grouped.values()]
    assert newest == sorted(newest, reverse=True)


def test_keyset_pages_cover_every_row_once_in_order(client: TestClient) -> None:
    everything = _ids(_all(client))
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 4}
    while True:
        page = client.get("/api/artifacts", params=params).json()
        assert page["total"] == len(everything)
        seen += _ids(page)
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == everything
    filtered = client.get("/api/artifacts", params={"type": "chart", "limit": 3}).json()
    rest = client.get(
        "/api/artifacts", params={"type": "chart", "limit": 3, "cursor": filtered["next_cursor"]}
    ).json()
    assert _ids(filtered) + _ids(rest) == _ids(_all(client, type="chart"))


def test_bad_parameters_are_422_with_one_line_per_parameter(client: TestClient) -> None:
    response = client.get(
        "/api/artifacts",
        params={"type": "picture", "limit": 0, "date": "2025-13-01", "group_by": "run"},
    )
    assert response.status_code == 422
    lines = response.json()["error"].splitlines()
    assert sorted(line.split(":")[0] for line in lines) == ["date", "group_by", "limit", "type"]
    assert any(line.startswith("type: ") and "'chart'" in line for line in lines)
    for params, name in (
        ({"symbol": "TS|LA"}, "symbol"),
        ({"start": "2025-06-05", "end": "2025-06-01"}, "start"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"limit": 1001}, "limit"),
    ):
        response = client.get("/api/artifacts", params=params)
        assert response.status_code == 422, params
        assert response.json()["error"].startswith(f"{name}: "), response.json()
    response = client.get("/api/artifacts/abc")
    assert response.status_code == 422 and response.json()["error"].startswith("artifact_id: ")


def test_one_artifact_has_every_column_its_partition_payload_and_links(
    client: TestClient, pipeline: Pipeline
) -> None:
    chart = _row(client, "daily_chart")
    body = client.get(f"/api/artifacts/{chart['id']}").json()
    ArtifactDetail.model_validate(body)
    assert {k: body[k] for k in COLUMNS} == chart
    assert body["partition"] == {"key": "2025-06-02|TSLA", "symbol": "TSLA", "date": "2025-06-02"}
    assert body["content_type"] == "image/png"
    assert body["object_key"].startswith("daily_chart/TSLA/2025-06-02/")
    links = body["links"]
    base = f"http://testserver/api/artifacts/{chart['id']}"
    assert links["self"] == base and links["download"] == f"{base}/download"
    assert links["image"] == f"{base}/image"
    assert links["page"] == f"http://testserver/artifacts/{chart['id']}"
    assert links["dagster_run"] == f"http://127.0.0.1:3000/runs/{pipeline.runs['TSLA']}"
    assert links["mlflow_run"] == (
        f"http://127.0.0.1:5000/#/experiments/{chart['experiment_id']}/runs/{chart['run_id']}"
    )
    signal = client.get(f"/api/artifacts/{_row(client, 'trading_signal')['id']}").json()
    assert signal["links"]["image"] is None and signal["content_type"] == "application/json"
    missing = client.get("/api/artifacts/999999")
    assert missing.status_code == 404
    assert missing.json()["error"].startswith("no artifact #999999 in the artifacts database")


def test_ui_base_urls_are_settings(pipeline: Pipeline) -> None:
    env = {**pipeline.env, "DAGSTER_UI_URL": "https://dagster.example.com/",
           "MLFLOW_UI_URL": "http://mlflow.internal:5000"}
    with TestClient(create_app(env)) as client:
        row = _row(client, "order")
        links = client.get(f"/api/artifacts/{row['id']}").json()["links"]
    assert links["dagster_run"] == f"https://dagster.example.com/runs/{row['execution_id']}"
    assert links["mlflow_run"].startswith("http://mlflow.internal:5000/#/experiments/")


def test_download_is_the_payload_with_its_type_and_file_name(client: TestClient) -> None:
    for step, content_type, extension in (
        ("market_data", "application/vnd.apache.parquet", ".parquet"),
        ("trading_signal", "application/json", ".json"),
        ("weekly_chart", "image/png", ".png"),
    ):
        row = _row(client, step)
        response = client.get(f"/api/artifacts/{row['id']}/download")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(content_type)
        disposition = response.headers["content-disposition"]
        assert disposition.startswith(f'attachment; filename="{step}_TSLA_2025-06-02_')
        assert disposition.endswith(f'{extension}"')
        assert hashlib.sha256(response.content).hexdigest() == row["content_hash"]
    signal = json.loads(client.get(f"/api/artifacts/{_row(client, 'trading_signal')['id']}"
                                   "/download").content)
    assert signal["symbol"] == "TSLA" and signal["action"] in ("BUY", "SELL", "HOLD")


def test_image_is_the_png_of_a_chart_or_plot_only(client: TestClient) -> None:
    chart = _row(client, "daily_chart")
    response = client.get(f"/api/artifacts/{chart['id']}/image")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG") and len(response.content) == chart["size_bytes"]
    assert response.headers["etag"] == f'"{chart["content_hash"]}"'
    plot = _all(client, type="plot")["artifacts"][0]
    assert client.get(f"/api/artifacts/{plot['id']}/image").content.startswith(b"\x89PNG")
    llm = _row(client, "llm_analysis")
    response = client.get(f"/api/artifacts/{llm['id']}/image")
    assert response.status_code == 404 and "not an image" in response.json()["error"]


def test_stats_summary_counts_what_the_list_holds(client: TestClient) -> None:
    stats = client.get("/api/artifacts/stats/summary").json()
    StatsSummary.model_validate(stats)
    everything = _all(client)["artifacts"]
    assert stats["total"] == len(everything)
    assert stats["by_type"] == {
        t: sum(a["type"] == t for a in everything) for t in {a["type"] for a in everything}
    }
    assert stats["by_symbol"] == {"NVDA": 8, "TSLA": 8}
    assert stats["by_asset"]["daily_chart"] == 2 and stats["runs"] == 5
    assert sum(stats["signals_by_action"].values()) == 2
    assert stats["newest_id"] == everything[0]["id"]
    assert stats["newest_created_at"] == everything[0]["created_at"]
    assert stats["first_partition_date"] == stats["last_partition_date"] == "2025-06-02"


def test_a_runs_artifacts_are_in_graph_order_with_its_status(
    client: TestClient, pipeline: Pipeline
) -> None:
    run_id = pipeline.runs["TSLA"]
    body = client.get(f"/api/runs/{run_id}/artifacts").json()
    assert [a["step_name"] for a in body["artifacts"]] == list(GRAPH_ORDER)
    assert body["status"] == "SUCCESS" and body["job"] == "trading_signals_job"
    assert body["partitions"] == ["2025-06-02|TSLA"] and body["total"] == 7
    assert body["started_at"] and body["dagster_run"].endswith(f"/runs/{run_id}")
    response = client.get("/api/runs/no-such-run/artifacts")
    assert response.status_code == 404 and "no-such-run" in response.json()["error"]


def test_without_a_dagster_instance_the_status_is_unknown(pipeline: Pipeline) -> None:
    def broken() -> dg.DagsterInstance:
        raise OSError("the instance's disk is gone")

    with TestClient(create_app(pipeline.env, instance_factory=broken)) as client:
        body = client.get(f"/api/runs/{pipeline.runs['TSLA']}/artifacts").json()
        page = client.get("/")
    assert body["status"] == "unknown" and body["started_at"] is None
    assert page.status_code == 200 and ">unknown<" in page.text
    assert "the instance&#39;s disk is gone" in page.text  # why, in the status's tooltip


def test_the_server_is_read_only(client: TestClient) -> None:
    row = _row(client, "order")
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        for path in ("/api/artifacts", f"/api/artifacts/{row['id']}"):
            response = client.request(method, path)
            assert response.status_code == 405, (method, path)
            assert "read-only" in response.json()["error"]
    spec = client.get("/openapi.json").json()
    assert {m for operations in spec["paths"].values() for m in operations} == {"get"}


def test_openapi_documents_the_models_parameters_and_errors(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    listing = spec["paths"]["/api/artifacts"]["get"]
    names = {p["name"] for p in listing["parameters"]}
    assert names == {"type", "symbol", "execution_id", "date", "start", "end", "group_by",
                     "limit", "cursor"}
    ok = listing["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("/ArtifactList")
    assert listing["responses"]["422"]["content"]["application/json"]["schema"]["$ref"] \
        .endswith("/ErrorBody")
    assert "next_cursor" in spec["components"]["schemas"]["ArtifactList"]["properties"]
    assert "keyset" in listing["description"].lower()
    image = spec["paths"]["/api/artifacts/{artifact_id}/image"]["get"]["responses"]["200"]
    assert "image/png" in image["content"]
    assert {"/api/artifacts/stats/summary", "/api/runs/{run_id}/artifacts",
            "/api/artifacts/{artifact_id}/download"} <= set(spec["paths"])
    assert not any(p.startswith(("/artifacts", "/symbols")) for p in spec["paths"])  # pages
    assert client.get("/docs").status_code == 200


def test_a_database_that_is_down_is_503_naming_it_without_its_password(
    pipeline: Pipeline,
) -> None:
    url = f"postgresql+psycopg2://trader:s3cret-pw@127.0.0.1:{free_port()}/artifacts"
    with TestClient(create_app({**pipeline.env, "DATABASE_URL": url})) as client:
        for path in ("/api/artifacts", "/api/artifacts/1", "/api/artifacts/stats/summary"):
            response = client.get(path)
            assert response.status_code == 503, path
            error = response.json()["error"]
            assert error.startswith("the artifacts database postgresql+psycopg2://trader:***@")
            assert "does not answer" in error and "s3cret-pw" not in response.text
        page = client.get("/", headers={"accept": "text/html"})
    assert page.status_code == 503 and "text/html" in page.headers["content-type"]
    assert "does not answer" in page.text and "s3cret-pw" not in page.text
    assert "Traceback" not in page.text


def test_the_upstream_map_is_the_graphs() -> None:
    graph = {
        key.to_user_string(): {d.to_user_string() for d in asset.asset_deps[key]}
        for asset in [*ASSETS, *EVALUATION_ASSETS] for key in asset.keys
    }
    for asset, inputs in UPSTREAM.items():
        assert set(inputs) == graph[asset], asset
    assert {a for a, deps in graph.items() if deps and a in GRAPH_ORDER} <= set(UPSTREAM)


# -- the token -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded(pipeline: Pipeline) -> Iterator[TestClient]:
    with TestClient(create_app({**pipeline.env, "ARTIFACT_BROWSER_TOKEN": TOKEN})) as client:
        yield client


def test_with_a_token_every_request_without_it_is_401(guarded: TestClient) -> None:
    for path in ("/api/artifacts", "/", "/docs", "/openapi.json", "/static/style.css"):
        response = guarded.get(path)
        assert response.status_code == 401, path
        assert "Authorization: Bearer" in response.json()["error"]
        assert response.headers["www-authenticate"].startswith("Bearer")
    wrong = guarded.get("/api/artifacts", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    # A query token opens pages only: API clients send the header.
    assert guarded.get("/api/artifacts", params={"token": TOKEN}).status_code == 401
    ok = guarded.get("/api/artifacts", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and TOKEN not in ok.text


def test_a_page_opened_with_the_token_sets_a_cookie_and_drops_it_from_the_url(
    pipeline: Pipeline,
) -> None:
    with TestClient(create_app({**pipeline.env, "ARTIFACT_BROWSER_TOKEN": TOKEN})) as client:
        response = client.get("/", params={"type": "chart", "token": TOKEN},
                              follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/?type=chart"
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
        page = client.get("/?type=chart")  # the client kept the cookie
        assert page.status_code == 200 and TOKEN not in page.text
        chart = client.get("/api/artifacts", params={"type": "chart"}).json()["artifacts"][0]
        assert client.get(f"/api/artifacts/{chart['id']}/image").status_code == 200
    with TestClient(create_app({**pipeline.env, "ARTIFACT_BROWSER_TOKEN": TOKEN})) as client:
        assert client.get("/?token=wrong-token", follow_redirects=False).status_code == 401


def test_access_log_lines_never_show_a_token() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                               '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:1", "GET", f"/?type=chart&token={TOKEN}", "1.1", 303),
                               None)
    RedactTokens().filter(record)
    assert TOKEN not in record.getMessage() and "token=***" in record.getMessage()
