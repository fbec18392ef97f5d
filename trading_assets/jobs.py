"""Jobs: the whole graph for one symbol-day partition; scoring signals once their horizon has
closed; the scorecard; the spool's replay into the stores."""

import dagster as dg

from io_managers.artifacts import Artifacts
from io_managers.reconcile import BrokerOrders, reconcile, verify
from resources.broker import BrokerResource
from trading_assets.evaluation.assets import EVALUATION_GROUP, SCORECARD_ASSETS, signal_outcome
from trading_assets.execution.venue import partition_of_ref

# The evaluation reads bars after the decision's day: never part of the run that decides. (The
# scorecard also covers every symbol and day at once, which a symbol-day run cannot hold.)
_EVALUATION = dg.AssetSelection.groups(EVALUATION_GROUP)
_SCORECARD = dg.AssetSelection.assets(*SCORECARD_ASSETS)

trading_signals_job = dg.define_asset_job(
    "trading_signals_job",
    selection=dg.AssetSelection.all() - _EVALUATION,
    description="Market data to portfolio for one symbol and trading day.",
    # Enforced by run monitoring (dagster.yaml): a hung broker or LLM cannot hold a run forever.
    tags={"dagster/max_runtime": 1800},
)

signal_outcome_job = dg.define_asset_job(
    "signal_outcome_job",
    selection=[signal_outcome],
    description="Scores one symbol-day's signal once its horizon has closed.",
    tags={"dagster/max_runtime": 600},
)

scorecard_job = dg.define_asset_job(
    "scorecard_job",
    selection=_SCORECARD,
    description="The scorecard over every stored outcome, with its plots.",
    tags={"dagster/max_runtime": 1800},
)


@dg.op(
    description="Moves artifacts waiting in the local spool into the database and object store.",
    # Back-to-back outages: a store that is still flaky gets two more tries, a minute apart.
    retry_policy=dg.RetryPolicy(
        max_retries=2, delay=60, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
    ),
)
def reconcile_spool(
    context: dg.OpExecutionContext,
    artifacts: Artifacts,
    broker: BrokerResource,
) -> None:
    # The configured write policy (STORAGE_*), as every other writer of artifacts.
    store, spool = artifacts.store(context.log), artifacts.spool
    days = sorted({e.record.partition_date for e in spool.entries() if e.record.partition_date})
    report = reconcile(store, spool)
    lines = report.lines()
    audit_differences = 0
    if days and broker.trading_mode() == "simulate":
        # The replayed days' orders at the simulator against their order artifacts, both ways.
        # IBKR is never contacted from here: `trading-signals verify --broker` does that.
        tickets = broker.paper().orders_between(days[0], days[-1])
        orders = BrokerOrders(broker.describe(), "simulate", {
            key: f"{t.order_ref} ({t.side.value} {t.quantity:g}, {t.status})"
            for t in tickets if (key := partition_of_ref(t.order_ref)) is not None
        })
        audit = verify(store, spool, days[0], days[-1], broker=orders)
        audit_differences = len(audit.broker_without_artifact) + len(audit.artifact_without_broker)
        lines += [line for line in audit.lines() if not line.startswith(("consistent", "differ"))]
    text = "\n".join(lines)
    context.log.info(text)
    context.add_output_metadata(
        {
            "moved": len(report.moved),
            "already_stored": len(report.already_stored),
            "damaged": len(report.damaged),
            "remaining": report.remaining,
            "other_stores": len(report.other_stores),
            "broker_audit_differences": audit_differences,
            "report": dg.MetadataValue.md(f"```text\n{text}\n```"),
        }
    )
    if not report.complete:
        raise dg.Failure(
            description=f"the spool is not empty after reconciling: {report.lines()[-1]}"
            + (f"; {report.stopped_by}" if report.stopped_by else ""),
            metadata={"remaining": report.remaining, "damaged": len(report.damaged)},
        )


@dg.job(
    description="Replays the local spool into the stores, exactly once per artifact.",
    tags={"dagster/max_runtime": 1800},
)
def reconcile_spool_job() -> None:
    reconcile_spool()
