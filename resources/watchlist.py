"""The watchlist: STOCK_SYMBOLS, or a file of tickers (one per line, # comments) when set."""

from pathlib import Path

import dagster as dg
from pydantic import Field

from trading_assets.partitions import DEFAULT_SYMBOLS, SymbolError, parse_symbols


class WatchlistResource(dg.ConfigurableResource):
    symbols: str = Field(default=DEFAULT_SYMBOLS, description="comma-separated tickers")
    file: str | None = Field(default=None, description="a watchlist file; wins over symbols")

    def current(self) -> list[str]:
        """The active symbols, normalised; a bad entry fails naming the source to fix."""
        if self.file:
            path = Path(self.file)
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise SymbolError(
                    f"WATCHLIST_FILE {path} cannot be read ({exc.strerror}): create it with one "
                    "ticker per line, or unset WATCHLIST_FILE to use STOCK_SYMBOLS"
                ) from exc
            entries = [line.split("#", 1)[0].strip() for line in text.splitlines()]
            raw, source = ",".join(e for e in entries if e), f"WATCHLIST_FILE {path}"
        else:
            raw, source = self.symbols, "STOCK_SYMBOLS"
        try:
            return parse_symbols(raw)
        except SymbolError as exc:
            raise SymbolError(f"{source}: {exc}") from exc
