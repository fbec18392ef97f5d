"""Pre-flight: the doctor's checks of the services a run uses, before it fetches anything.

The command line runs them before launching: a store, the gateway or the LLM API that does not
answer is named in seconds, and nothing runs. A run launched any other way (the schedule, a
sensor, the UI) checks the IB gateway at the start of its first step, ``market_data``, when the
order step will need it: a down gateway then fails the run at once, before any chart or LLM call,
and the step's retry policy still covers a gateway that is restarting. (The stores are not
checked there: a store that goes down during a run is what the spool is for.)
"""

# No `from __future__ import annotations`: Dagster must see ResourceDependency[...] unquoted.
from collections.abc import Mapping
from typing import Any

import dagster as dg

from resources.broker import BROKER_MODES, BrokerConfigError, BrokerResource
from resources.market_data import MarketDataResource
from resources.watchlist import WatchlistResource
from trading_assets.doctor_services import Finding
from trading_assets.tags import PREFLIGHT_TAG, backfill_tag

# What a run cannot do without. MLflow is only reported: the decision and the order do not
# depend on it (mlflow_run comes last).
REQUIRED = ("database", "objects", "gateway", "llm")
REPORTED = ("mlflow",)


def check_services(
    resolved: Mapping[str, Any],
    instance: dg.DagsterInstance,
    *,
    broker_used: bool = True,
) -> tuple[list[Finding], list[Finding]]:
    """(the required services that are down, the reported ones that are down).

    ``resolved`` maps resource names (as in resources_from_environment) to resolved resources.
    ``broker_used`` False (a backfill): the gateway counts only as the market-data source.
    """
    from trading_assets.doctor import run_checks, services_used

    used = services_used(dict(resolved))
    if not broker_used and resolved["market_source"].kind() != "ibkr":
        used.discard("gateway")
    wanted = [s for s in (*REQUIRED, *REPORTED) if s in used]
    down = [f for f in run_checks(dict(resolved), instance, services=wanted) if not f.ok]
    return (
        [f for f in down if f.service in REQUIRED],
        [f for f in down if f.service in REPORTED],
    )


def failure_message(down: list[Finding], lead: str = "nothing was run") -> str:
    lines = "\n".join(f"  {f.service}: {f.detail}" for f in down)
    return (
        f"{lead}: {len(down)} service(s) this run needs did not answer "
        f"(`trading-signals doctor` checks them all)\n{lines}"
    )


class Preflight(dg.ConfigurableResource):
    """The services a run uses, checked at the start of its first step (see the module).

    It holds the same instances as the run's other resources (``preflight_for``): replacing one
    of them means building this again, or it would check the one replaced.
    """

    broker: dg.ResourceDependency[BrokerResource]
    market_source: dg.ResourceDependency[MarketDataResource]
    watchlist: dg.ResourceDependency[WatchlistResource]

    def require(self, context: dg.AssetExecutionContext) -> None:
        """Raise a dg.Failure (retries allowed) when the order step will need a gateway that
        does not answer; nothing to check in simulate mode, in a backfill (never sent to a
        broker), or when market_data itself reads from the gateway (its own connection is the
        check)."""
        tags = context.run.tags
        try:
            mode = self.broker.trading_mode()
        except BrokerConfigError:
            return  # the order step refuses, naming the setting to change
        if (
            tags.get(PREFLIGHT_TAG) == "passed"  # the command line checked a moment ago
            or mode not in BROKER_MODES
            or backfill_tag(tags) is not None
            or self.market_source.kind() == "ibkr"
        ):
            return
        from trading_assets.doctor import run_checks

        resolved = {
            "broker": self.broker, "market_source": self.market_source,
            "watchlist": self.watchlist,
        }
        down = [f for f in run_checks(resolved, context.instance, services=["gateway"])
                if not f.ok]
        if down:
            raise dg.Failure(
                description=failure_message(down, "stopped before fetching any market data")
            )


def preflight_for(resources: Mapping[str, Any]) -> Preflight:
    """The Preflight over the very resources of ``resources`` (by their keys)."""
    return Preflight(**{name: resources[name] for name in Preflight.model_fields})
