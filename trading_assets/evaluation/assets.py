"""The evaluation group: what happened after each signal, and the scorecard over all of them.

Nothing in the trading graph (``market_data`` .. ``portfolio``) depends on these assets: they read
bars *after* the decision's day, which a decision must never see.
"""

# No `from __future__ import annotations`: Dagster must see the Config and resource types.
import datetime as dt
import logging
from collections.abc import Iterator

import dagster as dg
from pydantic import Field

from io_managers.artifact_store import ArtifactStore
from io_managers.artifacts import Artifacts
from resources.broker import BrokerResource
from resources.evaluation import EvaluationSettings
from resources.market_data import MarketDataResource
from resources.trading_policy import TradingPolicy
from trading_assets.calendar import latest_completed_session
from trading_assets.evaluation.models import PlotImage, Scorecard, SignalOutcome
from trading_assets.evaluation.outcome import horizon_end, score_signal
from trading_assets.execution.policies import BROKER_POOL, DOMAIN_ERRORS, NETWORK_RETRY, no_retry
from trading_assets.models import LlmAnalysis, MarketData, TradingSignal
from trading_assets.partitions import current_partition, normalize_symbol, symbol_day

EVALUATION_GROUP = "evaluation"
SCORECARD = "scorecard"
SCORECARD_EQUITY_CURVE = "scorecard_equity_curve"
SCORECARD_CALIBRATION = "scorecard_calibration"
SCORECARD_ASSETS = (SCORECARD, SCORECARD_EQUITY_CURVE, SCORECARD_CALIBRATION)
# A close that moved more than this between the decision's read and the later one is a revision
# or a split adjustment: the signal's prices no longer match the bars.
_CLOSE_TOLERANCE = 1e-6


def later_bars(
    market_source: MarketDataResource,
    decision: MarketData,
    end: dt.date,
    log: logging.Logger | None = None,
) -> MarketData:
    """The partition's bars read again, through ``end``, from the source the decision used."""
    later = market_source.fetch(decision.symbol, end, log=log)
    if later.source != decision.source:
        raise ValueError(
            f"market_data of {decision.as_of}|{decision.symbol} came from {decision.source}, but "
            f"MARKET_DATA_SOURCE reads {later.source} now: score a signal on the source it was "
            f"made from (set MARKET_DATA_SOURCE={decision.source})"
        )
    bars = later.bars
    day = dt.datetime.combine(decision.as_of, dt.time())
    if day not in bars.index:
        raise ValueError(
            f"{later.source_detail} has no bar on {decision.as_of} any more, the day "
            f"{decision.symbol}'s signal was made: fix the source"
        )
    then, now = decision.latest_close, float(bars.loc[day, "close"])
    if abs(now - then) > _CLOSE_TOLERANCE * max(abs(then), 1.0):
        raise ValueError(
            f"the close of {decision.symbol} on {decision.as_of} was {then:g} when the signal was "
            f"made and is {now:g} in {later.source_detail} now (a revision or a split "
            "adjustment): the signal's entry, stop and target no longer fit these bars"
        )
    return later


@dg.asset(
    partitions_def=symbol_day,
    group_name=EVALUATION_GROUP,
    kinds={"python"},
    description=(
        "What the price did after the signal: forward returns at 1/5/20 sessions, excursions and "
        "the bracket's simulated path; 'not yet scorable' until the horizon has closed."
    ),
    retry_policy=NETWORK_RETRY,
    # An ibkr source shares order's IBKR_CLIENT_ID, as market_data does.
    pool=BROKER_POOL,
)
def signal_outcome(
    context: dg.AssetExecutionContext,
    market_source: MarketDataResource,
    broker: BrokerResource,
    evaluation: EvaluationSettings,
    market_data: MarketData,
    llm_analysis: LlmAnalysis,
    trading_signal: TradingSignal,
) -> SignalOutcome:
    _, day = current_partition(context)
    try:
        latest = latest_completed_session(dt.datetime.now(dt.UTC))
        end = horizon_end(day, evaluation.exit_after_sessions)
        # Before the horizon closes, the decision's own bars are all there is: nothing is read.
        bars = market_data if end > latest else later_bars(
            market_source, market_data, end, log=context.log
        )
        outcome = score_signal(
            trading_signal,
            prompt_version=llm_analysis.prompt_version,
            market=bars,
            costs=broker.costs(),
            exit_after_sessions=evaluation.exit_after_sessions,
            latest_closed=latest,
        )
    except DOMAIN_ERRORS as exc:
        raise no_retry(exc) from exc
    metadata: dict[str, object] = {
        "scorable": outcome.scorable,
        "status": outcome.status,
        "horizon_end": str(outcome.horizon_end),
        "action": outcome.action.value,
        "confidence_score": outcome.confidence_score,
    }
    for horizon, value in outcome.forward_returns.items():
        metadata[f"return_{horizon}"] = round(value, 6)
    trade = outcome.trade
    if trade is not None:
        metadata["trade_filled"] = trade.filled
        if trade.filled:
            metadata["exit_reason"] = trade.exit_reason
            metadata["r_multiple"] = round(trade.r_multiple or 0.0, 4)
            metadata["net_return"] = round(trade.net_return or 0.0, 6)
    context.add_output_metadata(metadata)
    return outcome


class ScorecardConfig(dg.Config):
    """Which outcomes to score (default: every stored one)."""

    symbols: list[str] = Field(default_factory=list, description="tickers; empty: every symbol")
    start: str | None = Field(default=None, description="first signal day YYYY-MM-DD")
    end: str | None = Field(default=None, description="last signal day YYYY-MM-DD")


def _day(flag: str, raw: str | None) -> dt.date | None:
    if raw is None:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError as exc:
        raise ValueError(f"scorecard {flag} {raw!r} is not a date: use YYYY-MM-DD") from exc


def stored_outcomes(
    store: ArtifactStore,
    *,
    symbols: list[str] | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> list[SignalOutcome]:
    """The newest stored outcome of every partition in range (scorable or not yet)."""
    rows = store.database.newest_per_partition(
        signal_outcome.key.to_user_string(), start=start, end=end, symbols=symbols
    )
    outcomes = []
    for row in rows:
        value = store.load(row)
        assert isinstance(value, SignalOutcome)
        outcomes.append(value)
    return outcomes


# Recomputed whenever an outcome partition is stored (a backfill, or the sensor below scoring a
# horizon that has just closed), at most once per evaluation tick and never while one is running.
SCORECARD_AUTOMATION = (
    dg.AutomationCondition.any_deps_updated() & ~dg.AutomationCondition.in_progress()
)


def _out(dagster_type: type, kind: str, description: str, **more: object) -> dg.AssetOut:
    return dg.AssetOut(
        dagster_type=dagster_type, kinds={kind}, description=description,
        automation_condition=SCORECARD_AUTOMATION, **more,
    )


@dg.multi_asset(
    outs={
        SCORECARD: _out(
            Scorecard, "python",
            "Hit rates and edge with block-bootstrap 95% intervals, calibration by confidence, "
            "trade expectancy, the equity curve against buy-and-hold; by provider, model and "
            "prompt.",
        ),
        # Not drawn while nothing has been scored yet.
        SCORECARD_EQUITY_CURVE: _out(
            PlotImage, "png", "Following the signals against buy-and-hold of the same symbols.",
            is_required=False,
        ),
        SCORECARD_CALIBRATION: _out(
            PlotImage, "png",
            "Realized hit rate by confidence level and score decile (5 sessions).",
        ),
    },
    group_name=EVALUATION_GROUP,
    deps=[signal_outcome],
    # The scorecard and its plots are drawn from one computation: always all three together.
    can_subset=False,
)
def scorecard_assets(
    context: dg.AssetExecutionContext,
    config: ScorecardConfig,
    artifacts: Artifacts,
    broker: BrokerResource,
    policy: TradingPolicy,
    evaluation: EvaluationSettings,
) -> Iterator[dg.Output]:
    from trading_assets.evaluation.plots import calibration_png, equity_curve_png
    from trading_assets.evaluation.scorecard import build_scorecard

    try:
        symbols = [normalize_symbol(s) for s in config.symbols] or None
        start, end = _day("start", config.start), _day("end", config.end)
    except ValueError as exc:
        raise no_retry(exc) from exc
    outcomes = stored_outcomes(
        artifacts.store(context.log), symbols=symbols, start=start, end=end
    )
    card = build_scorecard(
        outcomes,
        limits=policy.limits(),
        costs=broker.costs(),
        starting_cash=broker.starting_cash,
        resamples=evaluation.bootstrap_resamples,
        seed=evaluation.bootstrap_seed,
    )
    context.log.info(card.overall.verdict)
    yield dg.Output(card, output_name=SCORECARD, metadata=_scorecard_metadata(card))
    if card.equity_curve is not None:
        plot = equity_curve_png(card.equity_curve).model_copy(update={"as_of": card.end})
        yield dg.Output(plot, output_name=SCORECARD_EQUITY_CURVE)
    plot = calibration_png(card.overall).model_copy(update={"as_of": card.end})
    yield dg.Output(plot, output_name=SCORECARD_CALIBRATION)


def _scorecard_metadata(card: Scorecard) -> dict[str, object]:
    overall = card.overall
    metadata: dict[str, object] = {
        "verdict": overall.verdict,
        "scored": card.scored,
        "not_yet_scorable": card.not_yet_scorable,
        "symbols": ", ".join(card.symbols),
        "period": f"{card.start} to {card.end}",
    }
    # Numbers, not text, so the UI's Plots tab can draw them over successive materializations.
    for horizon, interval in overall.hit_rate.items():
        if interval.estimate is not None:
            metadata[f"hit_rate_{horizon}"] = round(interval.estimate, 4)
    for stats in overall.actions:
        edge = stats.edge.get(5)
        if edge is not None and edge.estimate is not None:
            metadata[f"edge_5_{stats.action.value.lower()}"] = round(edge.estimate, 6)
    if card.equity_curve is not None:
        curve = card.equity_curve
        metadata["strategy_total_return"] = round(curve.strategy_stats.total_return, 6)
        metadata["buy_and_hold_total_return"] = round(curve.buy_and_hold_stats.total_return, 6)
        metadata["strategy_max_drawdown"] = round(curve.strategy_stats.max_drawdown, 6)
        if curve.strategy_stats.annualised_sharpe is not None:
            metadata["strategy_sharpe"] = round(curve.strategy_stats.annualised_sharpe, 4)
    return metadata
