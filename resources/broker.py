"""Where orders go: the paper simulator (TRADING_MODE=simulate, the default) or Interactive Brokers.

``ibkr-paper`` sends orders to an IBKR paper account; ``ibkr-live`` to a real one and needs a
second, explicit setting (IBKR_LIVE_CONFIRM). Known TWS/Gateway ports are checked against the mode.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from pydantic import Field, PrivateAttr

from resources.ibkr import LIVE_PORTS, PAPER_PORTS, IbkrResource
from resources.ibkr_broker import IbkrBroker
from trading_assets.execution.costs import CostModel
from trading_assets.execution.paper_broker import PaperBroker
from trading_assets.execution.venue import Venue

SUPPORTED_MODES = ("simulate", "ibkr-paper", "ibkr-live")
BROKER_MODES = ("ibkr-paper", "ibkr-live")
LIVE_CONFIRMATION = "I-UNDERSTAND-REAL-MONEY"


def _ports(ports: dict[int, str]) -> str:
    return ", ".join(f"{port} {name}" for port, name in ports.items())


class BrokerConfigError(ValueError):
    """The trading mode cannot work; the message names the variable to change."""


class BrokerResource(dg.ConfigurableResource):
    mode: str = Field(default="simulate", description="simulate | ibkr-paper | ibkr-live")
    paper_state_url: str = Field(
        default="sqlite:///data/paper_broker.db", description="where the simulator keeps orders"
    )
    starting_cash: float = Field(default=100_000.0, gt=0)
    live_confirm: str = Field(
        default="", description=f"IBKR_LIVE_CONFIRM; must be {LIVE_CONFIRMATION} for ibkr-live"
    )
    commission_per_share: float = Field(
        default=CostModel().commission_per_share, ge=0,
        description="COMMISSION_PER_SHARE: USD a share the simulator (and the scorecard) charges",
    )
    commission_min: float = Field(
        default=CostModel().commission_min, ge=0, description="COMMISSION_MIN: USD minimum a fill"
    )
    slippage_bps: float = Field(
        default=CostModel().slippage_bps, ge=0, le=1000,
        description="SLIPPAGE_BPS: adverse slippage of simulated fills, basis points",
    )
    ibkr: IbkrResource

    _paper: PaperBroker | None = PrivateAttr(default=None)

    def costs(self) -> CostModel:
        """Fees and slippage of simulated fills: the paper simulator's and the scorecard's."""
        return CostModel(
            commission_per_share=self.commission_per_share,
            commission_min=self.commission_min,
            slippage_bps=self.slippage_bps,
        )

    def trading_mode(self) -> str:
        mode = self.mode.strip().lower()
        if mode not in SUPPORTED_MODES:
            raise BrokerConfigError(
                f"TRADING_MODE={self.mode!r} is not a trading mode: use one of "
                f"{', '.join(SUPPORTED_MODES)}"
            )
        port = self.ibkr.port
        if mode == "ibkr-paper" and port in LIVE_PORTS:
            raise BrokerConfigError(
                f"TRADING_MODE=ibkr-paper but IBKR_PORT={port} is the {LIVE_PORTS[port]} port: "
                f"use a paper port ({_ports(PAPER_PORTS)})"
            )
        if mode == "ibkr-live":
            if self.live_confirm.strip() != LIVE_CONFIRMATION:
                raise BrokerConfigError(
                    "TRADING_MODE=ibkr-live places real orders with real money and needs a second "
                    f"setting: IBKR_LIVE_CONFIRM={LIVE_CONFIRMATION} (or use TRADING_MODE="
                    "ibkr-paper)"
                )
            if port in PAPER_PORTS:
                raise BrokerConfigError(
                    f"TRADING_MODE=ibkr-live but IBKR_PORT={port} is the {PAPER_PORTS[port]} "
                    f"port: use a live port ({_ports(LIVE_PORTS)}) or TRADING_MODE=ibkr-paper"
                )
        return mode

    def describe(self) -> str:
        mode = self.trading_mode()
        if mode == "ibkr-paper":
            return f"Interactive Brokers PAPER account at {self.ibkr.describe()}"
        if mode == "ibkr-live":
            return f"Interactive Brokers LIVE account (real money) at {self.ibkr.describe()}"
        where = self.paper_state_url
        if where.startswith("sqlite:///"):
            where = str(Path(where.removeprefix("sqlite:///")).resolve())
        return f"paper simulator (state in {where}, starting cash {self.starting_cash:,.0f})"

    def paper(self) -> PaperBroker:
        if self._paper is None:
            self._paper = PaperBroker(self.paper_state_url, self.starting_cash, costs=self.costs())
        return self._paper

    @contextmanager
    def venue(self, log: logging.Logger | None = None) -> Iterator[Venue]:
        """The simulator, or a connected IBKR session for the block (closed when it ends)."""
        mode = self.trading_mode()
        if mode == "simulate":
            yield self.paper()
            return
        with self.ibkr.session(log) as session:
            yield IbkrBroker(session, mode)
