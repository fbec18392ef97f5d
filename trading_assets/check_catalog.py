"""Which asset checks block their asset's consumers, and what to do when one fails.

The one list both sides read: ``checks.py`` declares these checks blocking (Dagster then skips
the downstream steps of the same run), and the IO manager loads an artifact of these assets
only when the latest result of each of them passed on that very artifact, in any later run.
"""

from __future__ import annotations

from collections.abc import Mapping

BLOCKING_CHECKS: Mapping[str, tuple[str, ...]] = {
    "market_data": (
        "market_data_stored",
        "market_data_no_missing_days",
        "market_data_ohlc_consistent",
        "market_data_not_stale",
    ),
    "trading_signal": ("trading_signal_stored", "trading_signal_levels"),
}

FIXES: Mapping[str, str] = {
    "market_data": "fix the source (MARKET_DATA_SOURCE) and re-materialize market_data",
    "trading_signal": "re-materialize llm_analysis and trading_signal",
}


def is_blocking(asset: str, check_name: str) -> bool:
    return check_name in BLOCKING_CHECKS.get(asset, ())


def fix_for(asset: str) -> str:
    return FIXES.get(asset, f"re-materialize {asset}")
