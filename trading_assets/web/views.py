"""What each page shows, gathered from the stores: pure reads, no HTML (templates/ renders)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from trading_assets.models import LlmAnalysis
from trading_assets.web.context import Browser
from trading_assets.web.queries import DOWNSTREAM, UPSTREAM, ArtifactFilter, Row
from trading_assets.web.runs import RunInfo

CHART_ASSETS = ("daily_chart", "weekly_chart")
# The payloads a page shows as typed values; charts and plots are shown as <img> instead.
_LOADED = ("market_data", "llm", "signal", "order", "portfolio", "outcome", "scorecard")
_CACHED_FROM = re.compile(r"#(\d+)")
BARS_SHOWN = 15


def summary(row: Row) -> str:
    """One line about a row for the list: what a person looks for first."""
    meta = row["artifact_metadata"] or {}
    kind = row["type"]
    if kind == "signal":
        score = row["confidence"]
        return f"{row['action']} ({score:g})" if score is not None else str(row["action"])
    if kind == "llm":
        cached = ", cached" if meta.get("cached") else ""
        return f"{row['model_name']}{cached}"
    if kind == "order":
        return ("placed: " if meta.get("placed") else "none: ") + str(meta.get("reason", ""))
    if kind in ("chart", "plot"):
        return str(row["chart_type"] or "")
    if kind == "market_data":
        return f"{meta.get('rows')} bars to {meta.get('last_date')} ({meta.get('source')})"
    if kind == "portfolio":
        return f"{meta.get('positions', 0)} position(s), {meta.get('source', '')}"
    if kind == "outcome":
        return str(meta.get("status", ""))
    if kind == "scorecard":
        return str(meta.get("verdict", ""))
    return ""


@dataclass
class RunGroup:
    run_id: str
    info: RunInfo
    job: str | None
    partitions: list[str]
    rows: list[Row] = field(default_factory=list)


def group_by_run(b: Browser, rows: list[Row]) -> list[RunGroup]:
    """The page's rows by Dagster run (newest run first), with each run's status."""
    groups: dict[str, RunGroup] = {}
    infos = b.runs.lookup([r["execution_id"] for r in rows if r["execution_id"]])
    for row in rows:
        run_id = row["execution_id"] or ""
        group = groups.get(run_id)
        if group is None:
            info = infos.get(run_id) or RunInfo(run_id=run_id, note="no run id")
            group = groups[run_id] = RunGroup(run_id, info, info.job or row["workflow_id"], [])
        group.rows.append(row)
        if row["partition_key"] and row["partition_key"] not in group.partitions:
            group.partitions.append(row["partition_key"])
    return list(groups.values())


def _newest_key(row: Row) -> tuple[Any, int]:
    return row["created_at"], row["id"]


def lineage(b: Browser, row: Row) -> tuple[list[Row], list[Row]]:
    """(upstream, downstream): the artifacts of the same partition this one read, and read it.

    Upstream: the newest of each input asset produced before this one (what the load read);
    downstream: each consumer's artifact of the same run, else the first produced after it.
    """
    asset, key = row["step_name"], row["partition_key"]
    ups, downs = UPSTREAM.get(asset, ()), DOWNSTREAM.get(asset, ())
    if not key or not (ups or downs):
        return [], []
    found = b.stores.queries.partition(key, ups + downs)
    upstream, downstream = [], []
    for name in ups:
        candidates = [r for r in found if r["step_name"] == name]
        same = [r for r in candidates if r["execution_id"] == row["execution_id"]]
        before = [r for r in candidates if _newest_key(r) <= _newest_key(row)]
        upstream += (same or before)[:1]
    for name in downs:
        candidates = [r for r in found if r["step_name"] == name]
        same = [r for r in candidates if r["execution_id"] == row["execution_id"]]
        after = sorted((r for r in candidates if _newest_key(r) > _newest_key(row)),
                       key=_newest_key)
        downstream += (same or after)[:1]
    return upstream, downstream


def charts_sent(b: Browser, row: Row, analysis: LlmAnalysis) -> dict[str, Row | None]:
    """timeframe -> the chart artifact whose PNG the analysis was sent (by its sha256)."""
    hashes = analysis.image_sha256
    found = b.stores.queries.by_content(row["partition_key"] or "", CHART_ASSETS,
                                        list(hashes.values()))
    sent: dict[str, Row | None] = {}
    for timeframe, digest in hashes.items():
        matching = [r for r in found if r["content_hash"] == digest]
        same_run = [r for r in matching if r["execution_id"] == row["execution_id"]]
        sent[timeframe] = (same_run or matching or [None])[0]
    return sent


def cached_from_id(analysis: LlmAnalysis) -> int | None:
    """The artifact id an analysis served from the cache names ('artifact #12 (run ...)')."""
    if not analysis.cached or not analysis.cached_from:
        return None
    match = _CACHED_FROM.search(analysis.cached_from)
    return int(match.group(1)) if match else None


def detail(b: Browser, row: Row) -> dict[str, Any]:
    """Everything the detail page of ``row`` shows."""
    upstream, downstream = lineage(b, row)
    context: dict[str, Any] = {
        "row": row,
        "links": b.links(row, ""),
        "upstream": upstream,
        "downstream": downstream,
        "value": b.stores.value(row) if row["type"] in _LOADED else None,
    }
    value = context["value"]
    if isinstance(value, LlmAnalysis):
        context["charts_sent"] = charts_sent(b, row, value)
        context["cached_from_id"] = cached_from_id(value)
    if row["type"] == "market_data" and value is not None:
        context["bars"] = value.bars.tail(BARS_SHOWN).iloc[::-1]
    if row["type"] == "scorecard" and row["execution_id"]:
        context["plots"] = [r for r in b.stores.queries.run(row["execution_id"])
                            if r["type"] == "plot"]
    return context


def latest_scorecard(b: Browser) -> dict[str, Any] | None:
    """The newest scorecard (over every symbol: NULL symbol) with its plots, or None."""
    row = b.stores.queries.newest(ArtifactFilter(type="scorecard"))
    if row is None:
        return None
    run = b.stores.queries.run(row["execution_id"]) if row["execution_id"] else []
    plots = [r for r in run if r["type"] == "plot"]
    return {"row": row, "value": b.stores.value(row), "plots": plots}
