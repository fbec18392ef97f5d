"""How each typed asset value becomes stored bytes plus artifact-row fields, and back again.

Market data is Parquet (readable by any data tool), charts are the PNG itself, everything else
is the pydantic model's JSON.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from functools import singledispatch
from typing import Any, TypeVar

from pydantic import BaseModel

from io_managers.errors import CorruptArtifactError
from resources.database import ArtifactRecord, ArtifactType
from trading_assets.evaluation.models import PlotImage, Scorecard, SignalOutcome
from trading_assets.models import (
    ChartImage,
    LlmAnalysis,
    MarketData,
    OrderDecision,
    PortfolioSnapshot,
    TradingSignal,
)

PARQUET = "application/vnd.apache.parquet"
PNG = "image/png"
JSON = "application/json"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Parquet schema metadata keys that carry MarketData's fields other than the bars.
_MARKET_DATA_FIELDS = ("symbol", "as_of", "source", "source_detail")

ImageT = TypeVar("ImageT", ChartImage, PlotImage)

_JSON_MODELS: dict[str, type[BaseModel]] = {
    "llm": LlmAnalysis,
    "signal": TradingSignal,
    "order": OrderDecision,
    "portfolio": PortfolioSnapshot,
    "outcome": SignalOutcome,
    "scorecard": Scorecard,
}


@dataclass(frozen=True)
class SerializedArtifact:
    """A value ready to store: the payload and the ``artifacts`` columns it fills."""

    data: bytes
    content_type: str
    extension: str
    artifact_type: ArtifactType
    row_fields: dict[str, Any] = field(default_factory=dict)


def _json_safe(model: BaseModel, **kwargs: Any) -> dict[str, Any]:
    # Through JSON text rather than model_dump(mode="json"): NaN becomes null, which JSONB accepts.
    return json.loads(model.model_dump_json(**kwargs))


@singledispatch
def serialize(obj: object) -> SerializedArtifact:
    supported = ", ".join(sorted(t.__name__ for t in serialize.registry if t is not object))
    raise TypeError(
        f"the artifact IO manager cannot store a {type(obj).__module__}.{type(obj).__qualname__}: "
        f"assets must return one of {supported} (add a serializer in io_managers/serializers.py "
        "for a new type)"
    )


@serialize.register
def _(obj: MarketData) -> SerializedArtifact:
    # pyarrow (about 0.2 s to import) loads with the first bars stored, not with the code.
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(obj.bars, preserve_index=True)
    extra = {
        "symbol": obj.symbol,
        "as_of": obj.as_of.isoformat(),
        "source": obj.source,
        "source_detail": obj.source_detail,
    }
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), **{k.encode(): v.encode() for k, v in extra.items()}}
    )
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    index = obj.bars.index
    summary = {
        "rows": len(obj.bars),
        "first_date": index.min().date().isoformat(),
        "last_date": index.max().date().isoformat(),
        "source": obj.source,
        "source_detail": obj.source_detail,
    }
    return SerializedArtifact(
        data=sink.getvalue().to_pybytes(),
        content_type=PARQUET,
        extension="parquet",
        artifact_type="market_data",
        row_fields={"artifact_metadata": summary},
    )


def _as_png(
    obj: ChartImage | PlotImage, artifact_type: ArtifactType, kind: str
) -> SerializedArtifact:
    return SerializedArtifact(
        data=obj.png,
        content_type=PNG,
        extension="png",
        artifact_type=artifact_type,
        row_fields={"chart_type": kind, "chart_data": _json_safe(obj, exclude={"png"})},
    )


@serialize.register
def _(obj: ChartImage) -> SerializedArtifact:
    return _as_png(obj, "chart", obj.timeframe.value)


@serialize.register
def _(obj: LlmAnalysis) -> SerializedArtifact:
    summary = obj.model_dump(
        include={
            "provider",
            "prompt_version",
            "input_tokens",
            "output_tokens",
            "latency_ms",
            "cost_usd",
            "priced",
            "cached",
        }
    )
    return _as_json(
        obj,
        "llm",
        prompt=obj.prompt,
        response=obj.response,
        prompt_length=len(obj.prompt),
        response_length=len(obj.response),
        model_name=obj.model_name,
        artifact_metadata=summary,
    )


@serialize.register
def _(obj: TradingSignal) -> SerializedArtifact:
    return _as_json(
        obj,
        "signal",
        action=obj.action.value,
        confidence=obj.confidence_score,
        signal_data=_json_safe(obj),
        model_name=obj.model_name,
    )


@serialize.register
def _(obj: OrderDecision) -> SerializedArtifact:
    summary = {
        "placed": obj.placed,
        "reason": obj.reason,
        "mode": obj.mode,
        "reused_existing": obj.reused_existing,
    }
    return _as_json(obj, "order", artifact_metadata=summary)


@serialize.register
def _(obj: PortfolioSnapshot) -> SerializedArtifact:
    summary = {"source": obj.source, "positions": len(obj.positions)}
    return _as_json(obj, "portfolio", artifact_metadata=summary)


@serialize.register
def _(obj: SignalOutcome) -> SerializedArtifact:
    summary: dict[str, Any] = {
        "scorable": obj.scorable,
        "status": obj.status,
        "horizon_end": obj.horizon_end.isoformat(),
        "provider": obj.provider,
        "prompt_version": obj.prompt_version,
        **{f"return_{h}": r for h, r in obj.forward_returns.items()},
    }
    if obj.trade is not None:
        summary.update(trade_filled=obj.trade.filled, r_multiple=obj.trade.r_multiple)
    return _as_json(
        obj,
        "outcome",
        action=obj.action.value,
        confidence=obj.confidence_score,
        model_name=obj.model_name,
        artifact_metadata=summary,
    )


@serialize.register
def _(obj: Scorecard) -> SerializedArtifact:
    summary = {
        "start": obj.start.isoformat() if obj.start else None,
        "end": obj.end.isoformat() if obj.end else None,
        "symbols": obj.symbols,
        "scored": obj.scored,
        "not_yet_scorable": obj.not_yet_scorable,
        "verdict": obj.overall.verdict,
    }
    return _as_json(obj, "scorecard", artifact_metadata=summary)


@serialize.register
def _(obj: PlotImage) -> SerializedArtifact:
    return _as_png(obj, "plot", obj.name)


def _as_json(obj: BaseModel, artifact_type: ArtifactType, **row_fields: Any) -> SerializedArtifact:
    return SerializedArtifact(
        data=obj.model_dump_json().encode(),
        content_type=JSON,
        extension="json",
        artifact_type=artifact_type,
        row_fields=row_fields,
    )


def deserialize(artifact_type: str, data: bytes, record: ArtifactRecord) -> object:
    """The value stored as ``data``; CorruptArtifactError (naming the fix) if it cannot be read."""
    try:
        if artifact_type == "market_data":
            return _market_data(data)
        if artifact_type == "chart":
            return _image(data, record, ChartImage)
        if artifact_type == "plot":
            return _image(data, record, PlotImage)
        model = _JSON_MODELS.get(artifact_type)
        if model is None:
            known = ", ".join(["market_data", "chart", "plot", *_JSON_MODELS])
            raise CorruptArtifactError.for_record(
                record, f"its type {artifact_type!r} is not one of {known}"
            )
        return model.model_validate_json(data)
    except (KeyError, ValueError) as exc:
        # ValueError covers pydantic's ValidationError, bad JSON and bad UTF-8.
        raise CorruptArtifactError.for_record(
            record, f"its {artifact_type} payload does not load ({type(exc).__name__}: {exc})"
        ) from exc


def _market_data(data: bytes) -> MarketData:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(data))
    except pa.ArrowException as exc:
        raise ValueError(f"not a Parquet table: {type(exc).__name__}: {exc}") from exc
    metadata = table.schema.metadata or {}
    missing = [k for k in _MARKET_DATA_FIELDS if k.encode() not in metadata]
    if missing:
        raise KeyError(f"the Parquet schema metadata lacks {missing}")
    fields = {k: metadata[k.encode()].decode() for k in _MARKET_DATA_FIELDS}
    return MarketData(
        symbol=fields["symbol"],
        as_of=dt.date.fromisoformat(fields["as_of"]),
        source=fields["source"],  # type: ignore[arg-type]  # validated by the model
        source_detail=fields["source_detail"],
        bars=table.to_pandas(),
    )


def _image(data: bytes, record: ArtifactRecord, model: type[ImageT]) -> ImageT:
    """A chart or a plot: the PNG payload plus the fields its row keeps in ``chart_data``."""
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("the payload is not a PNG image")
    if record.chart_data is None:
        raise KeyError(f"the artifact row has no chart_data to rebuild the {record.type} from")
    return model.model_validate({**record.chart_data, "png": data})
