"""What one symbol-day's MLflow run holds, built from the partition's stored artifacts.

Plain code without Dagster or the MLflow client: the asset loads, this decides, the resource logs.
The charts, signal, order and portfolio are logged as the exact bytes the artifact store holds, so
an MLflow artifact and its ``artifacts`` row share one sha256.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from io_managers.artifact_store import ArtifactStore
from io_managers.serializers import deserialize
from resources.database import ArtifactRecord
from resources.mlflow_tracking import RunSpec
from trading_assets.models import (
    ChartImage,
    LlmAnalysis,
    MarketData,
    OrderDecision,
    PortfolioSnapshot,
    TradingSignal,
)

# The seven SPEC assets, in graph order: each one's newest artifact feeds the run.
TRACKED_ASSETS = (
    "market_data",
    "daily_chart",
    "weekly_chart",
    "llm_analysis",
    "trading_signal",
    "order",
    "portfolio",
)
PARTITION_TAG = "dagster.partition"
# Artifact path in the MLflow run -> the asset whose stored payload it is, byte for byte.
PAYLOAD_FILES = {
    "charts/daily_chart.png": "daily_chart",
    "charts/weekly_chart.png": "weekly_chart",
    "signal.json": "trading_signal",
    "order.json": "order",
    "portfolio.json": "portfolio",
}

V = TypeVar("V")


def experiment_name(symbol: str) -> str:
    return f"trading_workflow_{symbol}"


@dataclass(frozen=True)
class StoredArtifact:
    record: ArtifactRecord
    payload: bytes


@dataclass(frozen=True)
class PartitionOutcome:
    """The newest stored artifact of each of the seven assets for one partition, loaded."""

    stored: Mapping[str, StoredArtifact]
    market_data: MarketData
    daily_chart: ChartImage
    weekly_chart: ChartImage
    analysis: LlmAnalysis
    signal: TradingSignal
    order: OrderDecision
    portfolio: PortfolioSnapshot

    def artifact_ids(self) -> list[int]:
        return [s.record.id for s in self.stored.values() if s.record.id is not None]

    def execution_ids(self) -> list[str]:
        """The Dagster runs that wrote these artifacts (one, unless assets were re-run alone)."""
        return sorted({s.record.execution_id or "" for s in self.stored.values()} - {""})


def load_outcome(store: ArtifactStore, partition_key: str) -> PartitionOutcome:
    """Read (hash-checked) and load the newest artifact of every tracked asset."""
    stored: dict[str, StoredArtifact] = {}
    values: dict[str, object] = {}
    for asset in TRACKED_ASSETS:
        record = store.latest_record(asset, partition_key)
        payload = store.read_payload(record)
        stored[asset] = StoredArtifact(record, payload)
        values[asset] = deserialize(record.type, payload, record)
    return PartitionOutcome(
        stored=stored,
        market_data=_typed(values, "market_data", MarketData),
        daily_chart=_typed(values, "daily_chart", ChartImage),
        weekly_chart=_typed(values, "weekly_chart", ChartImage),
        analysis=_typed(values, "llm_analysis", LlmAnalysis),
        signal=_typed(values, "trading_signal", TradingSignal),
        order=_typed(values, "order", OrderDecision),
        portfolio=_typed(values, "portfolio", PortfolioSnapshot),
    )


def _typed(values: Mapping[str, object], asset: str, kind: type[V]) -> V:
    value = values[asset]
    if not isinstance(value, kind):
        raise TypeError(
            f"the newest {asset} artifact holds a {type(value).__name__}, not a {kind.__name__}: "
            f"re-materialize {asset} for this partition"
        )
    return value


def build_run_spec(
    outcome: PartitionOutcome,
    *,
    symbol: str,
    day: dt.date,
    partition_key: str,
    dagster_run_id: str,
    job_name: str,
) -> RunSpec:
    """Tags, params, metrics and files of the partition's MLflow run (SPEC.md, MLflow)."""
    signal, order, portfolio, analysis = (
        outcome.signal,
        outcome.order,
        outcome.portfolio,
        outcome.analysis,
    )
    tags = {
        "dagster.run_id": dagster_run_id,
        "dagster.job": job_name,
        "dagster.artifacts_run_ids": ",".join(outcome.execution_ids()),
        "trading.symbol": symbol,
        "trading.date": day.isoformat(),
        "trading.provider": signal.provider,
        "trading.model": signal.model_name,
        "trading.action": signal.action.value,
        "trading.confidence_level": signal.confidence_level.value,
        "trading.actionable": str(signal.actionable).lower(),
        "trading.order_placed": str(order.placed).lower(),
        "trading.market_data_source": outcome.market_data.source,
    }
    params = {
        "symbol": symbol,
        "date": day.isoformat(),
        "provider": signal.provider,
        "model": signal.model_name,
        "prompt_version": analysis.prompt_version,
        # False: llm_cost_usd is 0 because a local model's cost is unknown, not because it was free.
        "llm_priced": str(analysis.priced).lower(),
        "position_size_pct": f"{signal.position_size_pct:g}",
        "min_confidence_score": f"{signal.min_confidence_score:g}",
        "market_data_source": outcome.market_data.source,
        "bars": str(len(outcome.market_data.bars)),
        "trading_mode": order.mode,
    }
    # An account that was not read has no value to chart: log nothing rather than zeros.
    account = portfolio if portfolio.read else None
    metrics: dict[str, float | None] = {
        "latest_price": outcome.market_data.latest_close,
        "confidence": signal.confidence_score,
        "portfolio_value": account.total_value if account else None,
        "order_placed": 1.0 if order.placed else 0.0,
        "cash": account.cash if account else None,
        "unrealized_pnl": account.unrealized_pnl if account else None,
        "realized_pnl": account.realized_pnl if account else None,
        "positions": float(len(account.positions)) if account else None,
        "fills_today": float(len(account.fills_today)) if account else None,
        "entry_price": signal.entry_price,
        "stop_loss": signal.stop_loss,
        "take_profit": signal.take_profit,
        "risk_reward_ratio": signal.risk_reward_ratio,
        "llm_input_tokens": float(analysis.input_tokens),
        "llm_output_tokens": float(analysis.output_tokens),
        "llm_cost_usd": analysis.cost_usd,
        "llm_latency_ms": analysis.latency_ms,
    }
    files = {path: outcome.stored[asset].payload for path, asset in PAYLOAD_FILES.items()}
    files["llm/prompt.txt"] = analysis.prompt.encode()
    files["llm/response.txt"] = analysis.response.encode()
    files["artifacts.json"] = json.dumps(_manifest(outcome), indent=2).encode()
    order_note = f"placed: {order.reason}" if order.placed else f"none placed: {order.reason}"
    note = (
        f"**{signal.action.value}** {signal.confidence_level.value} "
        f"({signal.confidence_score:g}) for {symbol} on {day} by "
        f"{signal.provider}/{signal.model_name}. Order {order_note}. "
        f"Dagster run `{dagster_run_id}` ({job_name}), partition `{partition_key}`."
    )
    return RunSpec(
        experiment_name=experiment_name(symbol),
        run_name=f"{symbol} {day.isoformat()}",
        identity=(PARTITION_TAG, partition_key),
        tags=tags,
        params=params,
        metrics={k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(v)},
        files=files,
        note=note,
    )


def _manifest(outcome: PartitionOutcome) -> dict[str, dict[str, object]]:
    """Which ``artifacts`` row (and Dagster run) each logged value came from."""
    return {
        asset: {
            "artifact_id": s.record.id,
            "type": s.record.type,
            "object_uri": s.record.object_uri,
            "content_hash": s.record.content_hash,
            "size_bytes": s.record.size_bytes,
            "dagster_run_id": s.record.execution_id,
        }
        for asset, s in outcome.stored.items()
    }
