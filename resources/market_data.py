"""Where bars come from: the seeded synthetic generator (default), a CSV/Parquet folder or IBKR."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import Field

from resources.ibkr import IbkrResource
from trading_assets.market_data.folder_source import MarketDataError, load_folder_bars
from trading_assets.market_data.synthetic import synthetic_bars
from trading_assets.models import MarketData

SUPPORTED_SOURCES = ("synthetic", "csv", "ibkr")


class MarketDataResource(dg.ConfigurableResource):
    """MARKET_DATA_SOURCE picks the source; ``csv`` reads MARKET_DATA_DIR (CSV or Parquet files),
    ``ibkr`` asks TWS / IB Gateway for daily TRADES bars (regular trading hours)."""

    source: str = Field(default="synthetic", description="synthetic | csv | ibkr")
    data_dir: str = Field(default="data/market", description="folder of <SYMBOL>.csv/.parquet")
    history_days: int = Field(default=520, ge=30, le=5000, description="trading days of bars")
    date_format: str | None = Field(
        default=None,
        description="strftime format of the csv date column, e.g. %d/%m/%Y; detected when unset",
    )
    ibkr: IbkrResource

    def kind(self) -> Literal["synthetic", "csv", "ibkr"]:
        source = self.source.strip().lower()
        if source not in SUPPORTED_SOURCES:
            raise MarketDataError(
                f"MARKET_DATA_SOURCE={self.source!r} is not a source: use one of "
                f"{', '.join(SUPPORTED_SOURCES)}"
            )
        return source  # type: ignore[return-value]

    def describe(self) -> str:
        if self.kind() == "csv":
            dates = f", dates as {self.date_format}" if self.date_format else ""
            return f"csv/parquet folder {Path(self.data_dir).resolve()}{dates}"
        if self.kind() == "ibkr":
            return f"Interactive Brokers daily TRADES bars (RTH) from {self.ibkr.describe()}"
        return "synthetic (seeded per symbol; never sent to a broker)"

    def fetch(
        self, symbol: str, as_of: dt.date, log: logging.Logger | None = None
    ) -> MarketData:
        if self.kind() == "ibkr":
            with self.ibkr.session(log) as session:
                bars = session.daily_bars(symbol, as_of, self.history_days)
            return MarketData(
                symbol=symbol,
                as_of=as_of,
                source="ibkr",
                source_detail=(
                    f"IBKR {self.ibkr.address} reqHistoricalData TRADES 1 day RTH to {as_of}"
                ),
                bars=bars,
            )
        if self.kind() == "csv":
            return load_folder_bars(
                Path(self.data_dir), symbol, as_of, self.history_days, self.date_format
            )
        return synthetic_bars(symbol, as_of, self.history_days)
