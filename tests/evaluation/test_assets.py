"""The evaluation group in the graph: outcomes after the fact, the scorecard, the sensor, and the
proof that no decision asset ever sees a bar after its day."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import pytest

from io_managers.artifact_store import ArtifactStore
from trading_assets.calendar import sessions_between
from trading_assets.definitions import build_definitions
from trading_assets.environment import resources_from_environment
from trading_assets.evaluation.assets import stored_outcomes
from trading_assets.evaluation.models import PlotImage, Scorecard, SignalOutcome
from trading_assets.evaluation.outcome import horizon_end
from trading_assets.market_data.synthetic import synthetic_bars
from trading_assets.partitions import partition_key_for
from trading_assets.sensors import outcomes_due, signal_outcome_sensor

DECISION_ASSETS = (
    "market_data", "daily_chart", "weekly_chart", "trading_signal", "order", "portfolio",
)
DAY = dt.date(2025, 6, 2)
LATER = dt.date(2025, 7, 31)


def _csv(folder: Path, symbol: str, through: dt.date) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    bars = synthetic_bars(symbol, through, 800).bars
    bars.rename_axis("date").reset_index().to_csv(folder / f"{symbol}.csv", index=False)


def _env(root: Path, market: Path, mlflow_uri: str) -> dict[str, str]:
    return {
        "TRADING_DATA_DIR": str(root),
        "MLFLOW_TRACKING_URI": mlflow_uri,
        "MARKET_DATA_SOURCE": "csv",
        "MARKET_DATA_DIR": str(market),
    }


def _materialize(env: dict[str, str], instance: dg.DagsterInstance, job: str, **kwargs: object):
    defs = build_definitions(resources_from_environment(env))
    return defs.resolve_job_def(job).execute_in_process(
        instance=instance, raise_on_error=False, **kwargs
    )


def _store(env: dict[str, str]) -> ArtifactStore:
    resources = resources_from_environment(env)
    return ArtifactStore(resources["artifact_db"], resources["object_store"])


def test_decision_inputs_are_identical_whether_or_not_later_bars_exist(
    tmp_path: Path, instance: dg.DagsterInstance, shared_mlflow_uri: str
) -> None:
    instance.add_dynamic_partitions("symbol", ["TSLA"])
    market = tmp_path / "market"
    payloads: list[dict[str, str]] = []
    for through, name in ((DAY, "only-to-day"), (LATER, "with-later-bars")):
        # The same file path both times, so even the recorded source path is the same.
        _csv(market, "TSLA", through)
        env = _env(tmp_path / name, market, shared_mlflow_uri)
        result = _materialize(
            env, instance, "trading_signals_job", partition_key=partition_key_for("TSLA", DAY)
        )
        assert result.success
        store = _store(env)
        rows = {r.step_name: r for r in store.database.query(execution_id=result.run_id)}
        seen = {asset: rows[asset].content_hash for asset in DECISION_ASSETS}
        # The analysis records its own latency; what it was asked and answered must not differ.
        llm = rows["llm_analysis"]
        seen["llm_analysis"] = json.dumps([llm.prompt, llm.response])
        payloads.append(seen)
    assert payloads[0] == payloads[1]


def _sensor(env: dict[str, str], instance: dg.DagsterInstance) -> dg.SensorResult | dg.SkipReason:
    resources = resources_from_environment(env)
    with dg.build_sensor_context(
        instance=instance,
        resources={"artifact_db": resources["artifact_db"], "evaluation": resources["evaluation"]},
    ) as context:
        return signal_outcome_sensor(context)


def test_signals_are_scored_by_the_sensor_then_the_scorecard_by_automation(
    instance: dg.DagsterInstance, data_env: dict[str, str]
) -> None:
    """One scenario in the order a deployment lives it (graph runs are the slow part)."""
    defs = build_definitions(resources_from_environment(data_env))
    instance.add_dynamic_partitions("symbol", ["TSLA"])
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert first.total_requested == 0  # nothing scored yet: nothing to recompute
    days = [d.date() for d in sessions_between(DAY, dt.date(2025, 6, 4))]
    keys = [partition_key_for("TSLA", day) for day in days]
    for key in keys:
        assert _materialize(data_env, instance, "trading_signals_job", partition_key=key).success

    # The sensor asks for every signal whose horizon has closed, once per horizon end.
    requested = _sensor(data_env, instance)
    assert isinstance(requested, dg.SensorResult)
    assert [(r.partition_key, r.run_key) for r in requested.run_requests] == [
        (str(key), f"outcome|{key}|{horizon_end(day, 20)}")
        for key, day in zip(keys, days, strict=True)
    ]
    for key, day in zip(keys, days, strict=True):
        result = _materialize(data_env, instance, "signal_outcome_job", partition_key=key)
        assert result.success
        outcome = result.output_for_node("signal_outcome")
        assert isinstance(outcome, SignalOutcome) and outcome.scorable, outcome.status
        # An independent reading of the same synthetic path.
        bars = synthetic_bars("TSLA", horizon_end(day, 20), 40).bars
        close = bars.loc[str(day), "close"]
        later = bars[bars.index.date > day]["close"]
        for horizon in (1, 5, 20):
            expected = later.iloc[horizon - 1] / close - 1
            assert outcome.forward_returns[horizon] == pytest.approx(expected, rel=1e-12)
    assert isinstance(_sensor(data_env, instance), dg.SkipReason)  # all scored now

    # Declarative automation asks for the scorecard once after the new outcomes, then not again.
    second = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    for name in ("scorecard", "scorecard_equity_curve", "scorecard_calibration"):
        assert second.get_num_requested(dg.AssetKey(name)) == 1
    third = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=second.cursor)
    assert third.total_requested == 0

    card_run = _materialize(data_env, instance, "scorecard_job")
    assert card_run.success
    card = card_run.output_for_node("scorecard_assets", "scorecard")
    assert isinstance(card, Scorecard)
    assert card.scored == len(days) and card.symbols == ["TSLA"]
    assert (card.start, card.end) == (days[0], days[-1])
    rows = _store(data_env).database.query(execution_id=card_run.run_id)
    kinds = sorted((r.step_name, r.type) for r in rows)
    assert kinds == [
        ("scorecard", "scorecard"),
        ("scorecard_calibration", "plot"),
        ("scorecard_equity_curve", "plot"),
    ]
    assert all(r.symbol is None and r.partition_key is None for r in rows)
    plot_row = next(r for r in rows if r.step_name == "scorecard_equity_curve")
    plot = _store(data_env).load(plot_row)
    assert isinstance(plot, PlotImage) and plot.png.startswith(b"\x89PNG")
    metadata = {
        m.materialization.asset_key.to_user_string(): m.materialization.metadata
        for m in card_run.get_asset_materialization_events()
    }
    assert "data:image/png;base64," in metadata["scorecard_equity_curve"]["thumbnail"].value
    assert isinstance(metadata["scorecard"]["scored"].value, int)
    assert [o.as_of for o in stored_outcomes(_store(data_env))] == days


def test_an_outcome_is_not_yet_scorable_until_its_horizon_closes(
    instance: dg.DagsterInstance, data_env: dict[str, str]
) -> None:
    recent = dt.date.today() - dt.timedelta(days=3)
    day = max(d.date() for d in sessions_between(recent - dt.timedelta(days=7), recent))
    instance.add_dynamic_partitions("symbol", ["TSLA"])
    key = partition_key_for("TSLA", day)
    assert _materialize(data_env, instance, "trading_signals_job", partition_key=key).success
    result = _materialize(data_env, instance, "signal_outcome_job", partition_key=key)
    assert result.success
    outcome = result.output_for_node("signal_outcome")
    assert not outcome.scorable and outcome.status.startswith("not yet scorable")
    assert outcome.forward_returns == {} and outcome.trade is None


def test_outcomes_due_are_the_closed_horizons_not_yet_scored() -> None:
    signals = {"2025-06-02|TSLA": DAY, "2025-06-03|TSLA": dt.date(2025, 6, 3),
               "2025-06-04|TSLA": dt.date(2025, 6, 4)}
    scored = {"2025-06-02|TSLA": True, "2025-06-03|TSLA": False}
    latest = horizon_end(dt.date(2025, 6, 3), 20)
    due = outcomes_due(signals, scored, latest_closed=latest, exit_after_sessions=20)
    # 06-02 is scored; 06-03 was 'not yet' and its horizon has just closed; 06-04's has not.
    assert due == [("2025-06-03|TSLA", latest)]


def _synthetic_source() -> object:
    from resources.ibkr import IbkrResource
    from resources.market_data import MarketDataResource

    return MarketDataResource(source="synthetic", ibkr=IbkrResource())


def test_later_bars_come_from_the_decisions_source_and_agree_with_its_close() -> None:
    from trading_assets.evaluation.assets import later_bars

    decision = synthetic_bars("TSLA", DAY, 300)
    end = horizon_end(DAY, 20)
    later = later_bars(_synthetic_source(), decision, end)
    assert later.as_of == end and later.bars.index[-1].date() == end
    assert later.bars.loc[str(DAY), "close"] == decision.latest_close

    revised = decision.bars.copy()
    revised.iloc[-1, revised.columns.get_loc("close")] *= 0.5  # a split since the signal
    with pytest.raises(ValueError, match="a revision or a split adjustment"):
        later_bars(_synthetic_source(), decision.model_copy(update={"bars": revised}), end)
    other = decision.model_copy(update={"source": "csv"})
    with pytest.raises(ValueError, match="set MARKET_DATA_SOURCE=csv"):
        later_bars(_synthetic_source(), other, end)
