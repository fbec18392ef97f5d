"""The trading rules users tune: confidence threshold, sizing, risk limits, the kill switch."""

from __future__ import annotations

from typing import Literal

import dagster as dg
from pydantic import Field

from trading_assets.execution.gates import kill_switch_reason
from trading_assets.execution.rules import RiskLimits


class TradingPolicy(dg.ConfigurableResource):
    min_confidence: float = Field(
        default=50.0, ge=0, le=100, description="signals below this score are not actionable"
    )
    min_risk_reward: float = Field(
        default=1.5, ge=0, description="BUY/SELL signals need at least this reward per risk"
    )
    trading_enabled: bool = Field(default=True, description="false: record signals, place nothing")
    sizing: Literal["percent", "fixed"] = "percent"
    fixed_shares: int = Field(default=10, gt=0)
    max_notional_per_order: float = Field(default=25_000.0, gt=0)
    max_position_notional: float = Field(default=50_000.0, gt=0)
    max_position_pct: float = Field(
        default=10.0, gt=0, le=100,
        description="MAX_POSITION_PCT: percent of equity one order may use (caps the signal's)",
    )
    max_entry_deviation_pct: float = Field(
        default=5.0, gt=0,
        description="MAX_ENTRY_DEVIATION_PCT: how far (%) an entry may be from the latest close",
    )
    allow_short: bool = False
    max_orders_per_day: int = Field(
        default=10, ge=0, description="MAX_ORDERS_PER_DAY: orders per trading day, all symbols"
    )
    kill_switch: bool = Field(default=False, description="TRADING_KILL_SWITCH: stop all orders")
    kill_switch_file: str | None = Field(
        default=None, description="KILL_SWITCH_FILE: while this file exists, no order goes out"
    )

    def kill_switch_reason(self) -> str | None:
        """Why no order may go out right now, or None. Read at each order, never cached."""
        return kill_switch_reason(self.kill_switch, self.kill_switch_file)

    def limits(self) -> RiskLimits:
        return RiskLimits(
            sizing=self.sizing,
            fixed_shares=self.fixed_shares,
            max_notional_per_order=self.max_notional_per_order,
            max_position_notional=self.max_position_notional,
            allow_short=self.allow_short,
            max_orders_per_day=self.max_orders_per_day,
            max_position_pct=self.max_position_pct,
            min_risk_reward=self.min_risk_reward,
            max_entry_deviation_pct=self.max_entry_deviation_pct,
        )
