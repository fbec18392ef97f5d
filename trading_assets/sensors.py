"""Sensors: keep the symbol partitions in step with the watchlist; alert on failed runs."""

import dagster as dg

from resources.notifier import WebhookNotifier
from resources.watchlist import WatchlistResource
from trading_assets.errors import root_cause_message
from trading_assets.partitions import SYMBOL_DIMENSION, symbols


@dg.sensor(
    name="watchlist_sensor",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds watchlist symbols as partitions; a removed symbol keeps its history.",
)
def watchlist_sensor(
    context: dg.SensorEvaluationContext, watchlist: WatchlistResource
) -> dg.SensorResult | dg.SkipReason:
    watched = watchlist.current()
    registered = set(context.instance.get_dynamic_partitions(SYMBOL_DIMENSION))
    new = [s for s in watched if s not in registered]
    if not new:
        return dg.SkipReason(f"symbol partitions already cover the watchlist ({len(watched)})")
    context.log.info(f"registering symbol partitions: {', '.join(new)}")
    return dg.SensorResult(dynamic_partitions_requests=[symbols.build_add_request(new)])


def failure_message(
    job_name: str,
    partition: str | None,
    run_id: str,
    steps: list[tuple[str, str]],
    run_error: str | None,
) -> str:
    """A Slack-ready message naming the job, partition, failed step(s) and error."""
    lines = [
        f":rotating_light: {job_name} failed for partition {partition or '(none)'}",
        f"run {run_id}",
    ]
    for step, error in steps:
        lines.append(f"step {step}: {error}")
    if not steps and run_error:
        lines.append(f"error: {run_error}")
    return "\n".join(lines)


@dg.run_failure_sensor(
    name="run_failure_alert_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts failed runs to ALERT_WEBHOOK_URL (Slack-compatible), or logs them.",
)
def run_failure_alert_sensor(
    context: dg.RunFailureSensorContext, notifier: WebhookNotifier
) -> None:
    run = context.dagster_run
    steps = [
        (event.step_key or "?", root_cause_message(event.step_failure_data.error))
        for event in context.get_step_failure_events()
        if event.step_failure_data is not None
    ]
    message = failure_message(
        run.job_name,
        run.tags.get("dagster/partition"),
        run.run_id,
        steps,
        context.failure_event.message,
    )
    notifier.notify(message, context.log)
