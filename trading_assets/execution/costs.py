"""What trading costs: commission per share (with a per-order minimum) and slippage in basis points.

One model for the paper simulator's fills and for the evaluation of signals, so the scorecard
charges exactly what the simulator would. Defaults are IBKR Pro's fixed tier (USD 0.005 a share,
USD 1.00 minimum) and 5 bp of slippage: small, but not zero.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from trading_assets.models import OrderSide

FillKind = Literal["limit", "market"]


class CostModel(BaseModel):
    model_config = ConfigDict(frozen=True)

    commission_per_share: float = Field(default=0.005, ge=0, description="USD per share traded")
    commission_min: float = Field(default=1.0, ge=0, description="USD minimum per fill")
    slippage_bps: float = Field(default=5.0, ge=0, le=1000, description="adverse price move, bp")

    def fill_price(
        self, side: OrderSide, raw: float, kind: FillKind, limit: float | None = None
    ) -> float:
        """The price a fill gets after slippage: a buy pays up, a sell receives less.

        A limit order (an entry, a take profit) never fills beyond its limit, so its slippage is
        capped there; a market fill (a stop that triggered, a time exit) slips in full.
        """
        slip = self.slippage_bps / 10_000.0
        price = raw * (1 + slip) if side is OrderSide.BUY else raw * (1 - slip)
        if kind == "limit" and limit is not None:
            price = min(price, limit) if side is OrderSide.BUY else max(price, limit)
        return price

    def commission(self, quantity: float) -> float:
        """USD commission of one fill of ``quantity`` shares (0 for no shares)."""
        if quantity <= 0:
            return 0.0
        return max(self.commission_min, self.commission_per_share * abs(quantity))

    def describe(self) -> str:
        return (
            f"commission {self.commission_per_share:g} USD/share (min {self.commission_min:g} "
            f"USD), slippage {self.slippage_bps:g} bp"
        )
