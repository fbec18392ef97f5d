"""The code location: assets, checks, jobs, schedules, sensors and the resources they use."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import dagster as dg

from resources.settings_check import DEFAULT_CRON
from trading_assets.analysis.assets import llm_analysis, trading_signal
from trading_assets.charts.assets import daily_chart, weekly_chart
from trading_assets.checks import ASSET_CHECKS
from trading_assets.environment import resources_from_environment, workflow_schedule
from trading_assets.evaluation.assets import scorecard_assets, signal_outcome
from trading_assets.execution.assets import order, portfolio
from trading_assets.jobs import (
    reconcile_spool_job,
    scorecard_job,
    signal_outcome_job,
    trading_signals_job,
)
from trading_assets.market_data.assets import market_data
from trading_assets.preflight import preflight_for
from trading_assets.run_report import CLI_LOGGER, cli_logger
from trading_assets.schedules import build_trading_day_schedule
from trading_assets.sensors import (
    run_failure_alert_sensor,
    scorecard_automation_sensor,
    signal_outcome_sensor,
    spool_reconcile_sensor,
    stuck_run_sensor,
    watchlist_sensor,
)
from trading_assets.tracking.assets import mlflow_run

# Dagster builds its own sensors with a beta `owners` parameter; the warning is not ours to act on
# and would greet every user of the command line.
warnings.filterwarnings("ignore", category=dg.BetaWarning, message="Parameter `owners`")

ASSETS = [market_data, daily_chart, weekly_chart, llm_analysis, trading_signal, order, portfolio]
# After the seven, never before them: MLflow down or slow cannot hold up the order or portfolio.
TRACKING_ASSETS = [mlflow_run]
# Read bars after the decision's day; nothing above depends on them (no look-ahead).
EVALUATION_ASSETS = [signal_outcome, scorecard_assets]


def build_definitions(resources: Mapping[str, Any], cron: str = DEFAULT_CRON) -> dg.Definitions:
    return dg.Definitions(
        assets=[*ASSETS, *TRACKING_ASSETS, *EVALUATION_ASSETS],
        asset_checks=ASSET_CHECKS,
        jobs=[trading_signals_job, signal_outcome_job, scorecard_job, reconcile_spool_job],
        schedules=[build_trading_day_schedule(cron)],
        sensors=[
            watchlist_sensor,
            run_failure_alert_sensor,
            spool_reconcile_sensor,
            signal_outcome_sensor,
            scorecard_automation_sensor,
            stuck_run_sensor,
        ],
        # Over the very resources given (a caller may have replaced one of them).
        resources={**resources, "preflight": preflight_for(resources)},
        # Only when a run's config names it (the command line): otherwise Dagster's console.
        loggers={"console": dg.colored_console_logger, CLI_LOGGER: cli_logger},
        # One partition is seven quick steps: a process per step would cost more than the work.
        executor=dg.in_process_executor,
    )


def load_definitions(resources: Mapping[str, Any] | None = None) -> dg.Definitions:
    """The code location as the environment configures it: what Dagster, the command line and
    the backfill workers all load (``resources``: already built from the environment)."""
    resources = resources_from_environment() if resources is None else resources
    return build_definitions(resources, cron=workflow_schedule())


def load_job(
    resources: Mapping[str, Any] | None = None, name: str = trading_signals_job.name
) -> dg.JobDefinition:
    """One job of ``load_definitions`` (default: the trading-signals job)."""
    return load_definitions(resources).resolve_job_def(name)


@dg.definitions
def defs() -> dg.Definitions:
    return load_definitions()
