"""Checks an artifact (its row and its payload) before anything is written anywhere.

A bad artifact fails the asset with the field that is wrong; it never reaches a store or the
spool, so nothing half-valid is ever kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from resources.database import ArtifactRecord
from trading_assets.partitions import (
    DATE_DIMENSION,
    SYMBOL_DIMENSION,
    SymbolError,
    normalize_symbol,
)

MB = 1024 * 1024

# The artifact type each asset stores. An asset outside this table may store any type.
ASSET_TYPES: Mapping[str, str] = {
    "market_data": "market_data",
    "daily_chart": "chart",
    "weekly_chart": "chart",
    "llm_analysis": "llm",
    "trading_signal": "signal",
    "order": "order",
    "portfolio": "portfolio",
    "signal_outcome": "outcome",
    "scorecard": "scorecard",
    "scorecard_equity_curve": "plot",
    "scorecard_calibration": "plot",
}
# Types whose assets cover every symbol and day at once: no symbol or partition on their rows.
UNPARTITIONED_TYPES = frozenset({"scorecard", "plot"})

# Far above what the pipeline writes (bars: ~40 KB, a chart: ~150 KB, JSON: a few KB); a payload
# past these is a bug (a runaway history, an image at the wrong resolution), not data to keep.
MAX_BYTES: Mapping[str, int] = {
    "market_data": 50 * MB,
    "chart": 10 * MB,
    "llm": 10 * MB,
    "signal": 1 * MB,
    "order": 1 * MB,
    "portfolio": 10 * MB,
    "outcome": 1 * MB,
    "scorecard": 50 * MB,
    "plot": 10 * MB,
}

# Row fields every artifact of a type must carry (beyond the ones every artifact needs).
REQUIRED_BY_TYPE: Mapping[str, tuple[str, ...]] = {
    "market_data": (),
    "chart": ("chart_type", "image_path", "chart_data"),
    "llm": ("prompt", "response", "model_name"),
    "signal": ("action", "confidence", "signal_data"),
    "order": ("artifact_metadata",),
    "portfolio": ("artifact_metadata",),
    "outcome": ("action", "confidence", "artifact_metadata"),
    "scorecard": ("artifact_metadata",),
    "plot": ("chart_type", "image_path", "chart_data"),
}
REQUIRED_FOR_ALL = (
    "name", "workflow_id", "execution_id", "step_name", "task_id", "object_uri", "content_hash",
    "write_key",
)
REQUIRED_FOR_PARTITIONED = ("symbol", "partition_key", "partition_date")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ACTIONS = ("BUY", "SELL", "HOLD")
_CHART_TYPES = ("daily", "weekly")
_PLOT_TYPES = ("equity_curve", "calibration")


class ArtifactValidationError(ValueError):
    """An artifact that must not be stored; the message names the field and the fix."""


def validate_artifact(record: ArtifactRecord, payload: bytes) -> None:
    """Raise ArtifactValidationError for the first thing wrong with ``record`` + ``payload``."""
    problem = _problem(record, payload)
    if problem is not None:
        field, why = problem
        asset = record.step_name or record.name
        raise ArtifactValidationError(
            f"artifact {asset} for partition {record.partition_key} was not stored: field "
            f"`{field}` {why}"
        )


def _problem(record: ArtifactRecord, payload: bytes) -> tuple[str, str] | None:
    for field in REQUIRED_FOR_ALL:
        value = getattr(record, field)
        if value is None or value == "":
            return field, "is missing; every artifact row names its run, asset and partition"
    expected_type = ASSET_TYPES.get(record.step_name or "")
    if expected_type is not None and record.type != expected_type:
        return "type", (
            f"is {record.type!r}, but asset {record.step_name} stores {expected_type!r} "
            "artifacts: the asset returned a value of the wrong kind"
        )
    if record.type in UNPARTITIONED_TYPES:
        if record.partition_key is not None or record.symbol is not None:
            return "partition_key", (
                f"is {record.partition_key!r}; {record.type} artifacts cover every symbol and "
                "day, so they carry no partition or symbol"
            )
        return _content_problem(record, payload)
    for field in REQUIRED_FOR_PARTITIONED:
        if getattr(record, field) in (None, ""):
            return field, "is missing; every artifact row names its run, asset and partition"
    assert record.symbol is not None and record.partition_key is not None
    try:
        if normalize_symbol(record.symbol) != record.symbol:
            return "symbol", f"{record.symbol!r} is not normalised (upper case, no spaces)"
    except SymbolError as exc:
        return "symbol", f"{record.symbol!r} is not a ticker ({exc})"
    assert record.partition_date is not None
    expected_key = f"{record.partition_date.isoformat()}|{record.symbol}"
    if record.partition_key != expected_key:
        return "partition_key", (
            f"{record.partition_key!r} does not match the row's {DATE_DIMENSION} and "
            f"{SYMBOL_DIMENSION} (expected {expected_key!r})"
        )
    return _content_problem(record, payload)


def _content_problem(record: ArtifactRecord, payload: bytes) -> tuple[str, str] | None:
    for field in REQUIRED_BY_TYPE.get(record.type, ()):
        value = getattr(record, field)
        if value is None or (field != "response" and value == ""):
            return field, f"is missing; {record.type} artifacts always carry it"
    if record.type == "chart" and record.chart_type not in _CHART_TYPES:
        return "chart_type", f"is {record.chart_type!r}; expected one of {', '.join(_CHART_TYPES)}"
    if record.type == "plot" and record.chart_type not in _PLOT_TYPES:
        return "chart_type", f"is {record.chart_type!r}; expected one of {', '.join(_PLOT_TYPES)}"
    if record.type in ("signal", "outcome"):
        if record.action not in _ACTIONS:
            return "action", f"is {record.action!r}; expected one of {', '.join(_ACTIONS)}"
        if record.confidence is None or not 0 <= record.confidence <= 100:
            return "confidence", f"is {record.confidence!r}; expected a score from 0 to 100"
    if not _SHA256.match(record.content_hash):
        return "content_hash", "is not a sha256 hex digest"
    if not payload:
        return "payload", "is empty; an artifact always has content"
    if record.size_bytes != len(payload):
        return "size_bytes", f"is {record.size_bytes}, but the payload has {len(payload)} bytes"
    limit = MAX_BYTES.get(record.type)
    if limit is not None and len(payload) > limit:
        return "size_bytes", (
            f"is {len(payload):,} bytes, over the {limit // MB} MB limit for {record.type} "
            "artifacts: the value is far larger than this pipeline ever produces (check the "
            "history length or the chart size)"
        )
    return None
