"""Jobs: the whole graph for one symbol-day partition."""

from __future__ import annotations

import dagster as dg

trading_signals_job = dg.define_asset_job(
    "trading_signals_job",
    selection=dg.AssetSelection.all(),
    description="Market data to portfolio for one symbol and trading day.",
    # Enforced by run monitoring (dagster.yaml): a hung broker or LLM cannot hold a run forever.
    tags={"dagster/max_runtime": 1800},
)
