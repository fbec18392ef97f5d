"""What one partition's MLflow run holds, built without MLflow or Dagster."""

from __future__ import annotations

from tests.tracking.helpers import DAY, PARTITION, SYMBOL, seed_partition, store_for
from trading_assets.tracking.record import build_run_spec, load_outcome


def test_an_account_that_was_not_read_logs_no_portfolio_metrics(
    data_env: dict[str, str],
) -> None:
    seed_partition(data_env)
    outcome = load_outcome(store_for(data_env), str(PARTITION))
    read = build_run_spec(
        outcome, symbol=SYMBOL, day=DAY, partition_key=str(PARTITION), dagster_run_id="r",
        job_name="trading_signals_job",
    )
    assert read.metrics["portfolio_value"] == outcome.portfolio.total_value

    unread = outcome.portfolio.model_copy(
        update={"read": False, "source": "ibkr-paper: not read (backfill)", "total_value": 0.0,
                "cash": 0.0}
    )
    spec = build_run_spec(
        outcome.__class__(**{**outcome.__dict__, "portfolio": unread}),
        symbol=SYMBOL, day=DAY, partition_key=str(PARTITION), dagster_run_id="r",
        job_name="trading_signals_job",
    )
    for name in ("portfolio_value", "cash", "unrealized_pnl", "realized_pnl", "positions"):
        assert name not in spec.metrics  # never a zero that looks like an empty account
    assert spec.metrics["order_placed"] in (0.0, 1.0) and "latest_price" in spec.metrics
