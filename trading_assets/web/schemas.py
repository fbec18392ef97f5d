"""The API's response bodies as pydantic models: what /docs shows is what the endpoints return."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ErrorBody(BaseModel):
    error: str = Field(description="what went wrong and what to do; one line per bad parameter")


class Artifact(BaseModel):
    """One row of the ``artifacts`` table, every column, as the previous system's ``to_dict()``."""

    model_config = ConfigDict(extra="forbid")

    id: int
    name: str
    type: str = Field(description="market_data, chart, llm, signal, order, portfolio, outcome, "
                                  "scorecard or plot")
    symbol: str | None
    run_id: str | None = Field(description="the MLflow run")
    experiment_id: str | None = Field(description="the MLflow experiment")
    workflow_id: str | None = Field(description="the Dagster job")
    execution_id: str | None = Field(description="the Dagster run id")
    step_name: str | None = Field(description="the asset")
    dag_id: str | None = Field(description="the Dagster job")
    task_id: str | None = Field(description="the Dagster step key")
    partition_key: str | None = Field(description="'<date>|<SYMBOL>'")
    partition_date: dt.date | None
    prompt: str | None
    response: str | None
    prompt_length: int | None
    response_length: int | None
    model_name: str | None
    image_path: str | None
    chart_type: str | None
    chart_data: dict[str, Any] | None
    action: str | None
    confidence: float | None
    signal_data: dict[str, Any] | None
    artifact_metadata: dict[str, Any] | None = Field(
        description="content_type and object_key of the payload, and per-type details"
    )
    object_uri: str
    content_hash: str = Field(description="sha256 of the payload")
    size_bytes: int
    created_at: dt.datetime = Field(description="when it was produced (UTC, ISO 8601)")
    updated_at: dt.datetime
    write_key: str | None


class ArtifactList(BaseModel):
    artifacts: list[Artifact] = Field(description="newest first (created_at, then id)")
    total: int = Field(description="rows matching the filters over all pages")
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next (older) page; null on the last page"
    )
    grouped: dict[str, list[Artifact]] | None = Field(
        default=None,
        description="with group_by=execution_id: this page's rows by Dagster run, newest run "
        "first",
    )
    group_count: int | None = Field(default=None, description="runs in `grouped`")


class Partition(BaseModel):
    key: str
    symbol: str | None
    date: dt.date | None


class Links(BaseModel):
    self: str
    page: str = Field(description="the artifact's page in this browser")
    download: str
    image: str | None = Field(description="charts and plots only")
    dagster_run: str | None = Field(description="the run's page in the Dagster UI")
    mlflow_run: str | None = Field(description="the partition's run in the MLflow UI")


class ArtifactDetail(Artifact):
    model_config = ConfigDict(extra="forbid")

    partition: Partition | None
    content_type: str | None
    object_key: str | None
    links: Links


class StatsSummary(BaseModel):
    total: int
    by_type: dict[str, int]
    by_symbol: dict[str, int]
    by_asset: dict[str, int]
    signals_by_action: dict[str, int]
    runs: int = Field(description="distinct Dagster runs")
    newest_id: int | None
    newest_created_at: dt.datetime | None
    oldest_created_at: dt.datetime | None
    first_partition_date: dt.date | None
    last_partition_date: dt.date | None


class RunArtifacts(BaseModel):
    run_id: str
    job: str | None
    partitions: list[str]
    status: str = Field(description="from the Dagster instance; 'unknown' when it cannot be read")
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    dagster_run: str
    artifacts: list[Artifact] = Field(
        description="in graph order: market_data, daily_chart, weekly_chart, llm_analysis, "
        "trading_signal, order, portfolio, then the others"
    )
    total: int
