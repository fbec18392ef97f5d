"""Fixtures for the IBKR tests: a fake gateway, resources wired to it, one partition's inputs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from resources.broker import BrokerResource
from resources.market_data import MarketDataResource
from tests.ibkr.fake_ib import FakeGateway, fake_ibkr
from trading_assets.calendar import latest_completed_session
from trading_assets.environment import resources_from_environment
from trading_assets.execution.assets import order, portfolio
from trading_assets.market_data.assets import market_data
from trading_assets.models import TradingSignal
from trading_assets.partitions import partition_key_for, symbol_day
from trading_assets.preflight import preflight_for

# The only day an IBKR mode may send orders for: the latest completed session, now.
LATEST = latest_completed_session(dt.datetime.now(dt.UTC))
HISTORY = "60"  # trading days of bars: enough for the tests, quick to build


def buy_signal(symbol: str = "TSLA", day: dt.date = LATEST, entry: float = 100.0,
               action: str = "BUY", score: float = 75.0) -> TradingSignal:
    prices = {"BUY": (entry, entry * 0.95, entry * 1.10), "SELL": (entry, entry * 1.05,
              entry * 0.90)}.get(action, (None, None, None))
    level = "HIGH" if score >= 80 else "MEDIUM" if score >= 50 else "LOW"
    return TradingSignal(
        symbol=symbol, as_of=day, action=action, confidence_score=score, confidence_level=level,
        reasoning="test", key_factors=["test"], trend="BULLISH", provider="offline",
        model_name="test", entry_price=prices[0], stop_loss=prices[1], take_profit=prices[2],
        position_size_pct=10 if action != "HOLD" else 0,
        actionable=action != "HOLD" and score >= 50,
    )


def signal_asset(signal: TradingSignal) -> dg.AssetsDefinition:
    """A stand-in for the LLM half of the graph: the trading_signal asset, fixed."""

    @dg.asset(name="trading_signal", partitions_def=symbol_day, group_name="analysis")
    def _signal() -> TradingSignal:
        return signal

    return _signal


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
def ibkr_env(data_env: dict[str, str]) -> dict[str, str]:
    return {**data_env, "TRADING_MODE": "ibkr-paper", "MARKET_DATA_SOURCE": "ibkr",
            "MARKET_HISTORY_DAYS": HISTORY, "IBKR_PORT": "4002"}


def wired(env: dict[str, str], gateway: FakeGateway, **ibkr: Any) -> dict[str, Any]:
    """The project's resources for ``env``, with the IBKR connection going to ``gateway``."""
    resources = resources_from_environment(env)
    fake = fake_ibkr(gateway, port=int(env.get("IBKR_PORT", "4002")), pacing_wait_seconds=0,
                     **ibkr)
    source, broker = resources["market_source"], resources["broker"]
    resources["market_source"] = MarketDataResource(
        source=source.source, data_dir=source.data_dir, history_days=source.history_days,
        ibkr=fake,
    )
    resources["broker"] = BrokerResource(
        mode=broker.mode, paper_state_url=broker.paper_state_url,
        starting_cash=broker.starting_cash, live_confirm=broker.live_confirm, ibkr=fake,
    )
    resources["preflight"] = preflight_for(resources)  # checks the fake gateway, not the real
    return resources


Materialize = Callable[..., dg.ExecuteInProcessResult]


@pytest.fixture
def materialize(instance: dg.DagsterInstance) -> Materialize:
    """market_data -> (fixed) trading_signal -> order -> portfolio for one partition."""
    instance.add_dynamic_partitions("symbol", ["TSLA", "NVDA", "ZZZZ"])

    def run(resources: dict[str, Any], signal: TradingSignal | None = None,
            symbol: str = "TSLA", day: dt.date = LATEST,
            tags: dict[str, str] | None = None) -> dg.ExecuteInProcessResult:
        signal = signal or buy_signal(symbol, day)
        return dg.materialize(
            [market_data, signal_asset(signal), order, portfolio],
            partition_key=partition_key_for(symbol, day), resources=resources,
            instance=instance, tags=tags, raise_on_error=False,
        )

    return run


def checks(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def step_error(result: dg.ExecuteInProcessResult, step: str) -> str:
    failure = next(e for e in result.all_events if e.is_step_failure and e.step_key == step)
    return failure.step_failure_data.error.to_string()


def kill_file(tmp_path: Path) -> Path:
    return tmp_path / "data" / "KILL_SWITCH"
