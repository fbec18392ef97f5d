"""The llm_analysis and trading_signal assets: the analyst's reading, then a validated signal."""

# No `from __future__ import annotations`: Dagster must see the Config and resource types.
import json
from typing import Any

import dagster as dg
from pydantic import Field

from io_managers.artifact_store import ArtifactStore
from io_managers.artifacts import Artifacts
from resources.llm import AnalysisFailedError, LlmResource
from resources.trading_policy import TradingPolicy
from trading_assets.analysis.answer import build_signal, parse_answer
from trading_assets.analysis.cache import find_cached
from trading_assets.indicators import indicator_snapshot
from trading_assets.models import ChartImage, LlmAnalysis, MarketData, TradingSignal
from trading_assets.partitions import symbol_day
from trading_assets.ranged import (
    RANGED,
    Partition,
    PerPartition,
    each,
    is_ranged,
    per_partition_type,
    value_for,
)

FAILED_ANALYSIS = "llm_analysis_failed"


class LlmAnalysisConfig(dg.Config):
    """Per-run choices, so one partition can be read by two models and compared side by side."""

    provider: str | None = Field(
        default=None, description="offline | openai | anthropic; LLM_PROVIDER if unset"
    )
    model: str | None = Field(default=None, description="model name; LLM_MODEL or the default")
    fresh: bool = Field(
        default=False, description="ask the model even if the same question has a stored answer"
    )


# No RetryPolicy: calls already retry timeouts, 429 and 5xx inside the resource, and a step retry
# would pay again for a refusal or an invalid answer that a second try will not fix.
@dg.asset(
    partitions_def=symbol_day,
    group_name="analysis",
    kinds={"python"},
    description="The prompt, both charts' hashes, the raw answer, model, tokens, latency and cost.",
    # Caps simultaneous LLM calls across all runs (limit set in the instance, docker/dagster.yaml).
    pool="llm",
    backfill_policy=RANGED,
    dagster_type=per_partition_type(LlmAnalysis),
)
def llm_analysis(
    context: dg.AssetExecutionContext,
    config: LlmAnalysisConfig,
    llm: LlmResource,
    artifacts: Artifacts,
    market_data: PerPartition[MarketData],
    daily_chart: PerPartition[ChartImage],
    weekly_chart: PerPartition[ChartImage],
) -> PerPartition[LlmAnalysis]:
    ranged = is_ranged(context)
    store = artifacts.store(context.log)

    def produce(partition: Partition) -> tuple[LlmAnalysis, dict[str, Any]]:
        analysis = _analyse(
            context, config, llm, artifacts, store, partition,
            value_for(market_data, partition, ranged),
            value_for(daily_chart, partition, ranged),
            value_for(weekly_chart, partition, ranged),
        )
        return analysis, analysis_metadata(analysis)

    return each(context, produce)


def _analyse(
    context: dg.AssetExecutionContext,
    config: LlmAnalysisConfig,
    llm: LlmResource,
    artifacts: Artifacts,
    store: ArtifactStore,
    partition: Partition,
    market_data: MarketData,
    daily_chart: ChartImage,
    weekly_chart: ChartImage,
) -> LlmAnalysis:
    symbol, day = partition.symbol, partition.day
    request = llm.prepare(
        symbol=symbol,
        as_of=day,
        indicators=indicator_snapshot(market_data.bars),
        charts={"daily": daily_chart.png, "weekly": weekly_chart.png},
        provider=config.provider,
        model=config.model,
    )
    if request.provider != "offline" and not config.fresh:
        cached = find_cached(store, request)
        if cached is not None:
            return cached
    try:
        return llm.analyse(request, log=context.log)
    except AnalysisFailedError as exc:
        # Nothing is lost: the raw responses become an artifact row before the step fails.
        stored = store.write_or_spool(
            exc.analysis,
            spool=artifacts.spool,
            # Its own step name: loads of llm_analysis (a downstream re-run, MLflow) and the
            # cache only ever see analyses that succeeded.
            asset_name=FAILED_ANALYSIS,
            symbol=symbol,
            partition_key=partition.key,
            partition_date=day,
            job_name=context.job_name,
            run_id=context.run.run_id,
            step_key=context.get_step_execution_context().step.key,
        )
        record = stored.record
        where = (
            f"kept in the local spool at {stored.spool_path} until `trading-signals "
            "reconcile` moves it to the stores (a store is down)"
            if stored.spooled is not None
            else f"stored as artifact #{record.id} ({record.object_uri}): "
            f"`trading-signals artifacts show {record.id} --payload`"
        )
        raise AnalysisFailedError(
            f"{exc}. Every raw response is {where}",
            exc.analysis,
        ) from None  # the same failure, now with where its responses are: read this one


def analysis_metadata(analysis: LlmAnalysis) -> dict[str, Any]:
    """What a person checks on a decision: who answered, what was sent, what came back, cost."""
    metadata: dict[str, Any] = {
        "provider": analysis.provider,
        "model": analysis.model_name,
        "prompt_version": analysis.prompt_version,
        "prompt_chars": len(analysis.prompt),
        "prompt": dg.MetadataValue.md(f"```text\n{analysis.prompt}\n```"),
        "image_sha256": dg.MetadataValue.json(analysis.image_sha256),
        "response": dg.MetadataValue.md(f"```json\n{analysis.response}\n```"),
        "signal": dg.MetadataValue.json(
            json.loads(parse_answer(analysis.response).model_dump_json())
        ),
        "input_tokens": analysis.input_tokens,
        "output_tokens": analysis.output_tokens,
        "latency_ms": round(analysis.latency_ms, 1),
        # Micro-dollars: a call costs fractions of a cent.
        "cost_usd": round(analysis.cost_usd, 6),
        "priced": analysis.priced,
        "cached": analysis.cached,
        "requests": len(analysis.attempts),
    }
    if analysis.cache_key:
        metadata["cache_key"] = analysis.cache_key
    if analysis.cached_from:
        metadata["cached_from"] = analysis.cached_from
    return metadata


@dg.asset(
    partitions_def=symbol_day,
    group_name="analysis",
    kinds={"python"},
    description="BUY / SELL / HOLD with confidence, levels and size; invalid answers fail here.",
    backfill_policy=RANGED,
    dagster_type=per_partition_type(TradingSignal),
)
def trading_signal(
    context: dg.AssetExecutionContext,
    policy: TradingPolicy,
    llm_analysis: PerPartition[LlmAnalysis],
) -> PerPartition[TradingSignal]:
    ranged = is_ranged(context)

    def produce(partition: Partition) -> tuple[TradingSignal, dict[str, Any]]:
        signal = build_signal(
            value_for(llm_analysis, partition, ranged), min_confidence=policy.min_confidence,
            symbol=partition.symbol, as_of=partition.day,
        )
        return signal, signal_metadata(signal)

    return each(context, produce)


def two_decimals(value: float | None) -> float | None:
    """A price in cents or a ratio to 2 decimals, as people read it (the artifact keeps all)."""
    return None if value is None else round(value, 2)


def signal_metadata(signal: TradingSignal) -> dict[str, Any]:
    """The decision to read, and as numbers the Plots tab can chart over the partitions."""
    return {
        "action": signal.action.value,
        "confidence": f"{signal.confidence_level.value} ({signal.confidence_score:g})",
        "confidence_score": float(signal.confidence_score),
        "actionable": signal.actionable,
        "entry": two_decimals(signal.entry_price),
        "stop_loss": two_decimals(signal.stop_loss),
        "take_profit": two_decimals(signal.take_profit),
        "risk_reward": two_decimals(signal.risk_reward_ratio),
        "position_size_pct": two_decimals(signal.position_size_pct),
        "model": f"{signal.provider}/{signal.model_name}",
        "reasoning": dg.MetadataValue.md(signal.reasoning),
    }
