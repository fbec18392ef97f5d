"""The daily schedule: one run per watched symbol for the latest closed trading day."""

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg

from resources.settings_check import cron_problem
from resources.watchlist import WatchlistResource
from trading_assets.calendar import TIMEZONE, is_trading_day, latest_completed_session
from trading_assets.jobs import trading_signals_job
from trading_assets.partitions import SYMBOL_DIMENSION, partition_key_for


class ScheduleConfigError(ValueError):
    """WORKFLOW_SCHEDULE is not a cron expression Dagster can run."""


def validate_cron(value: str) -> str:
    """``value`` normalised, if Dagster can run it (the same rule as ``check_settings``)."""
    problem = cron_problem(value)
    if problem:
        raise ScheduleConfigError(problem)
    return " ".join(value.split())


def runs_for_tick(
    tick: dt.datetime, watched: list[str], registered: set[str]
) -> list[dg.RunRequest] | dg.SkipReason:
    """The run requests of one tick: none on exchange holidays, one per watched symbol."""
    local_day = tick.astimezone(ZoneInfo(TIMEZONE)).date()
    if not is_trading_day(local_day):
        return dg.SkipReason(f"{local_day} is not an NYSE trading day: no runs")
    day = latest_completed_session(tick)
    symbols = [s for s in watched if s in registered]
    if not symbols:
        return dg.SkipReason(
            f"no watched symbol is registered yet ({', '.join(watched)}): the watchlist sensor "
            "registers them"
        )
    return [
        dg.RunRequest(
            # One run per partition, whatever the number of ticks or retries of the tick.
            run_key=f"{day.isoformat()}|{symbol}",
            partition_key=partition_key_for(symbol, day),
            tags={"trading-signals/trigger": "schedule"},
        )
        for symbol in symbols
    ]


def build_trading_day_schedule(cron: str) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="trading_day_schedule",
        cron_schedule=validate_cron(cron),
        execution_timezone=TIMEZONE,
        job=trading_signals_job,
        description="Runs the graph for the latest closed trading day, one run per symbol.",
    )
    def trading_day_schedule(
        context: dg.ScheduleEvaluationContext, watchlist: WatchlistResource
    ) -> list[dg.RunRequest] | dg.SkipReason:
        tick = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
        registered = set(context.instance.get_dynamic_partitions(SYMBOL_DIMENSION))
        return runs_for_tick(tick, watchlist.current(), registered)

    return trading_day_schedule
