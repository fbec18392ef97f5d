"""The read API the previous system's clients call: artifacts, one artifact, its payload, stats,
and a run's artifacts. GET only."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from io_managers.artifact_store import IMAGE_TYPES
from trading_assets.web.context import Browser, browser
from trading_assets.web.errors import NotFound
from trading_assets.web.params import (
    MAX_LIMIT,
    CursorParam,
    GroupByParam,
    artifact_filter,
    parse_cursor,
)
from trading_assets.web.queries import ArtifactFilter, Row
from trading_assets.web.schemas import (
    Artifact,
    ArtifactDetail,
    ArtifactList,
    ErrorBody,
    Partition,
    RunArtifacts,
    StatsSummary,
)

# Objects are content-addressed (the key holds the hash): a payload never changes under its id.
IMMUTABLE = "private, max-age=31536000, immutable"
_DOWN = {503: {"model": ErrorBody, "description": "the database or object store does not answer"}}
_BAD = {422: {"model": ErrorBody, "description": "a bad parameter (one line per parameter)"}}
_MISSING = {404: {"model": ErrorBody, "description": "no such artifact"}}
_UNREADABLE = {500: {"model": ErrorBody, "description": "the stored object is missing or altered"}}

router = APIRouter(prefix="/api", tags=["artifacts"], responses={**_DOWN, **_BAD})

Dep = Annotated[Browser, Depends(browser)]


def _artifact(row: Row) -> Artifact:
    return Artifact.model_validate(row)


def _row(b: Browser, artifact_id: int) -> Row:
    row = b.stores.queries.get(artifact_id)
    if row is None:
        raise NotFound(f"no artifact #{artifact_id} in the {b.stores.queries.describe()}")
    return row


def content_type(row: Row) -> str:
    return str((row["artifact_metadata"] or {}).get("content_type") or "application/octet-stream")


def file_name(row: Row) -> str:
    """``<asset>_<SYMBOL>_<day>_<run>-<hash>.<ext>``: the object key's path, flattened."""
    key = (row["artifact_metadata"] or {}).get("object_key") or PurePosixPath(
        row["object_uri"]).name
    return "_".join(PurePosixPath(str(key)).parts)


@router.get(
    "/artifacts",
    response_model=ArtifactList,
    response_model_exclude_unset=True,
    summary="List artifacts, newest first",
)
def list_artifacts(
    b: Dep,
    where: Annotated[ArtifactFilter, Depends(artifact_filter)],
    group_by: GroupByParam = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="rows per page")] = 100,
    cursor: CursorParam = None,
) -> ArtifactList:
    """Artifacts matching every filter given, newest first (``created_at``, then ``id``).

    Keyset pagination: pass the response's ``next_cursor`` as ``cursor`` for the next, older
    page (null on the last page); a cursor stays valid while rows are added. ``total`` counts
    every row matching the filters (not only this page). With ``group_by=execution_id`` the
    page's rows are also returned grouped by Dagster run, newest run first.
    """
    page = b.stores.queries.page(where, limit, parse_cursor(cursor))
    items = [_artifact(r) for r in page.rows]
    body: dict[str, Any] = {
        "artifacts": items,
        "total": b.stores.queries.count(where),
        "next_cursor": page.next_cursor,
    }
    if group_by == "execution_id":
        grouped: dict[str, list[Artifact]] = {}
        for item in items:  # newest first, so the newest run comes first too
            grouped.setdefault(item.execution_id or "", []).append(item)
        body.update(grouped=grouped, group_count=len(grouped))
    return ArtifactList(**body)


@router.get("/artifacts/stats/summary", response_model=StatsSummary, summary="Counts")
def stats_summary(b: Dep) -> StatsSummary:
    """Counts by type, symbol, asset and signal action; runs; the newest artifact; the days."""
    return StatsSummary(**b.stores.queries.summary())


@router.get(
    "/artifacts/{artifact_id}",
    response_model=ArtifactDetail,
    responses=_MISSING,
    summary="One artifact",
)
def get_artifact(artifact_id: int, request: Request, b: Dep) -> ArtifactDetail:
    """Every column of the row, plus its partition, payload type and key, and links."""
    row = _row(b, artifact_id)
    metadata = row["artifact_metadata"] or {}
    partition = (
        Partition(key=row["partition_key"], symbol=row["symbol"], date=row["partition_date"])
        if row["partition_key"] else None
    )
    return ArtifactDetail(
        **row,
        partition=partition,
        content_type=metadata.get("content_type"),
        object_key=metadata.get("object_key"),
        links=b.links(row, str(request.base_url)),
    )


@router.get(
    "/artifacts/{artifact_id}/download",
    response_class=Response,
    responses={**_MISSING, **_UNREADABLE,
               200: {"content": {"application/octet-stream": {}}, "description": "the payload"}},
    summary="The stored payload",
)
def download(artifact_id: int, b: Dep) -> Response:
    """The payload bytes (PNG, Parquet or JSON) with their content type, as a file; the sha256
    is checked against the row first."""
    return _payload(b, _row(b, artifact_id), "attachment")


@router.get(
    "/artifacts/{artifact_id}/image",
    response_class=Response,
    responses={**_MISSING, **_UNREADABLE,
               200: {"content": {"image/png": {}}, "description": "the PNG"}},
    summary="A chart's or plot's PNG",
)
def image(artifact_id: int, b: Dep) -> Response:
    """The PNG of a ``chart`` or ``plot`` artifact, from the local folder or S3 / MinIO."""
    row = _row(b, artifact_id)
    if row["type"] not in IMAGE_TYPES:
        raise NotFound(
            f"artifact #{artifact_id} is a {row['type']}, not an image (chart or plot): use "
            f"/api/artifacts/{artifact_id}/download"
        )
    return _payload(b, row, "inline")


def _payload(b: Browser, row: Any, disposition: str) -> Response:
    """The row's stored bytes (sha256 checked) with their type and name; immutable."""
    return Response(
        b.stores.payload(row),
        media_type=content_type(row),
        headers={
            "Content-Disposition": f'{disposition}; filename="{file_name(row)}"',
            "ETag": f'"{row["content_hash"]}"',
            "Cache-Control": IMMUTABLE,
        },
    )


@router.get(
    "/runs/{run_id}/artifacts",
    response_model=RunArtifacts,
    responses={404: {"model": ErrorBody, "description": "no artifact of that run"}},
    tags=["runs"],
    summary="Everything one Dagster run produced",
)
def run_artifacts(run_id: str, b: Dep) -> RunArtifacts:
    """The run's artifacts in graph order, with its status and times from the Dagster instance
    (``unknown`` when the instance cannot be read)."""
    rows = b.stores.queries.run(run_id)
    if not rows:
        raise NotFound(f"no artifact of Dagster run {run_id} in the {b.stores.queries.describe()}")
    info = b.runs.lookup([run_id])[run_id]
    partitions = sorted({r["partition_key"] for r in rows if r["partition_key"]})
    return RunArtifacts(
        run_id=run_id,
        job=info.job or rows[0]["workflow_id"],
        partitions=partitions,
        status=info.status,
        started_at=info.started_at,
        ended_at=info.ended_at,
        dagster_run=b.settings.dagster_run_url(run_id),
        artifacts=[_artifact(r) for r in rows],
        total=len(rows),
    )
