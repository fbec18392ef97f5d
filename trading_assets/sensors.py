"""Sensors: keep the symbol partitions in step with the watchlist; alert on failed runs;
replay the local spool once the stores are back; score signals whose horizon has closed."""

import datetime as dt
import hashlib
import json
import time

import dagster as dg

from io_managers.artifacts import Artifacts
from resources.database import ArtifactDatabase
from resources.evaluation import EvaluationSettings
from resources.notifier import WebhookNotifier
from resources.watchlist import WatchlistResource
from trading_assets.calendar import latest_completed_session
from trading_assets.errors import root_cause_message
from trading_assets.evaluation.assets import SCORECARD_ASSETS
from trading_assets.evaluation.outcome import horizon_ends
from trading_assets.jobs import reconcile_spool_job, signal_outcome_job
from trading_assets.partitions import SYMBOL_DIMENSION, symbols
from trading_assets.run_recovery import reap, report_lines


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


@dg.sensor(
    name="spool_reconcile_sensor",
    job=reconcile_spool_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When artifacts wait in the local spool and both stores answer, replays them.",
)
def spool_reconcile_sensor(
    context: dg.SensorEvaluationContext,
    artifacts: Artifacts,
) -> dg.SensorResult | dg.SkipReason:
    spool = artifacts.spool
    waiting = spool.count()
    if waiting == 0:
        return dg.SkipReason("the spool is empty")
    active = context.instance.get_runs(
        dg.RunsFilter(job_name=reconcile_spool_job.name, statuses=IN_FLIGHT), limit=1
    )
    if active:
        return dg.SkipReason(f"{waiting} spooled; reconcile run {active[0].run_id} in flight")
    down = artifacts.store().unanswered()
    if down:
        return dg.SkipReason(f"{waiting} spooled; waiting for {down}")
    # The same entries left behind by a replay (damaged ones, or a store that failed again
    # mid-replay) are retried every half hour, not every minute: one failed run and its alert
    # say what is wrong; a run a minute would bury them.
    contents = hashlib.sha256(" ".join(spool.write_keys()).encode()).hexdigest()
    now = time.time()
    last = json.loads(context.cursor) if context.cursor else {}
    if last.get("contents") == contents and now - float(last.get("at", 0)) < SAME_SPOOL_RETRY_S:
        return dg.SkipReason(
            f"{waiting} spooled, the same entries as the last replay; it is retried every "
            f"{SAME_SPOOL_RETRY_S // 60} minutes (or run `trading-signals reconcile`)"
        )
    context.log.info(f"{waiting} artifacts in {spool.describe()} and both stores answer")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(tags={"trading-signals/spooled": str(waiting)})],
        cursor=json.dumps({"contents": contents, "at": now}),
    )


SAME_SPOOL_RETRY_S = 1800
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


# Runs one tick may request: a first tick after a long backfill queues them over several ticks.
MAX_OUTCOME_RUNS_PER_TICK = 200


def outcomes_due(
    signals: dict[str, dt.date],
    outcomes: dict[str, bool],
    *,
    latest_closed: dt.date,
    exit_after_sessions: int,
) -> list[tuple[str, dt.date]]:
    """(partition key, horizon end) of each signal whose horizon has closed and is not scored.

    ``signals``: partition key -> day of every stored signal; ``outcomes``: partition key ->
    whether its newest stored outcome is scorable.
    """
    waiting = sorted(
        ((day, key) for key, day in signals.items() if not outcomes.get(key)),
    )
    ends = horizon_ends([day for day, _ in waiting], exit_after_sessions)
    return [(key, end) for (_, key), end in zip(waiting, ends, strict=True) if end <= latest_closed]


def signals_due(
    artifact_db: ArtifactDatabase, *, latest_closed: dt.date, exit_after_sessions: int
) -> list[tuple[str, dt.date]]:
    """``outcomes_due`` over what the artifacts table holds: the sensor's and the CLI's list."""
    scored = {
        row.partition_key: bool((row.artifact_metadata or {}).get("scorable"))
        for row in artifact_db.newest_per_partition("signal_outcome")
        if row.partition_key
    }
    return outcomes_due(
        artifact_db.partitions_with("trading_signal"), scored,
        latest_closed=latest_closed, exit_after_sessions=exit_after_sessions,
    )


@dg.sensor(
    name="signal_outcome_sensor",
    job=signal_outcome_job,
    minimum_interval_seconds=600,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Materializes signal_outcome for every signal whose horizon has closed since it was "
        "recorded as 'not yet scorable' (or that was never scored)."
    ),
)
def signal_outcome_sensor(
    context: dg.SensorEvaluationContext,
    artifact_db: ArtifactDatabase,
    evaluation: EvaluationSettings,
) -> dg.SensorResult | dg.SkipReason:
    latest = latest_completed_session(dt.datetime.now(dt.UTC))
    due = signals_due(
        artifact_db, latest_closed=latest, exit_after_sessions=evaluation.exit_after_sessions
    )
    if not due:
        return dg.SkipReason(
            f"no signal's horizon has closed unscored (latest closed session {latest})"
        )
    batch = due[:MAX_OUTCOME_RUNS_PER_TICK]
    context.log.info(f"{len(due)} signals are scorable now; requesting {len(batch)}")
    return dg.SensorResult(
        run_requests=[
            # The run key names the horizon: a partition is scored once per horizon end, and a
            # failed scoring is not retried every tick (the failure alert says why).
            dg.RunRequest(partition_key=key, run_key=f"outcome|{key}|{end}")
            for key, end in batch
        ]
    )


# Declarative automation of the scorecard (SCORECARD_AUTOMATION in evaluation/assets.py): running
# by default, so a fresh deployment keeps its scorecard current without a click.
scorecard_automation_sensor = dg.AutomationConditionSensorDefinition(
    "scorecard_automation_sensor",
    target=dg.AssetSelection.assets(*SCORECARD_ASSETS),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=300,
    description="Recomputes the scorecard after new outcomes are stored.",
)


@dg.sensor(
    name="stuck_run_sensor",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Marks failed the runs of this host whose process is gone (a `trading-signals run` "
        "killed mid-run) and frees their pool slots, so the next scheduled run is not blocked."
    ),
)
def stuck_run_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    # Without it, a CLI run killed while holding the broker slot would block every scheduled run
    # until the next `trading-signals` command or run monitoring's max runtime (30 minutes).
    report = reap(context.instance)
    if not (report.reaped or report.freed_for):
        return dg.SkipReason(f"no dead run holds a slot ({len(report.runs)} in progress)")
    for line in report_lines(report):
        context.log.warning(line)
    return dg.SkipReason(
        f"reaped {len(report.reaped)} dead run(s), freed the slots of {len(report.freed_for)} "
        "ended run(s)"
    )
