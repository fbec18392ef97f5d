"""The list's query parameters, shared by the API and the pages: validated, blanks ignored.

A form submits empty fields as ``type=&symbol=``; they mean "no filter", for scripts too.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import BeforeValidator, StringConstraints

from resources.database import ArtifactType
from trading_assets.partitions import SymbolError, normalize_symbol
from trading_assets.web.errors import BadParameter
from trading_assets.web.queries import ArtifactFilter, Cursor

MAX_LIMIT = 1000


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


Blank = BeforeValidator(_blank_is_none)

TypeParam = Annotated[ArtifactType | None, Blank, Query(description="artifact type")]
# Lengths on the text itself: a blank parameter has become None before they apply.
SymbolParam = Annotated[
    Annotated[str, StringConstraints(max_length=32)] | None,
    Blank,
    Query(description="ticker, e.g. TSLA (case-insensitive)"),
]
RunParam = Annotated[
    Annotated[str, StringConstraints(max_length=64)] | None,
    Blank,
    Query(description="Dagster run id"),
]
DayParam = Annotated[dt.date | None, Blank]
GroupByParam = Annotated[
    Literal["execution_id"] | None,
    Blank,
    Query(description="execution_id: also return this page's rows grouped by Dagster run"),
]
CursorParam = Annotated[
    Annotated[str, StringConstraints(max_length=200)] | None,
    Blank,
    Query(description="the previous page's next_cursor (keyset pagination: newest first)"),
]


def artifact_filter(
    type: TypeParam = None,
    symbol: SymbolParam = None,
    execution_id: RunParam = None,
    date: Annotated[DayParam, Query(description="partition day YYYY-MM-DD")] = None,
    start: Annotated[DayParam, Query(description="first partition day, inclusive")] = None,
    end: Annotated[DayParam, Query(description="last partition day, inclusive")] = None,
) -> ArtifactFilter:
    """The filters of ``GET /api/artifacts`` and of the list page (a FastAPI dependency)."""
    if symbol is not None:
        try:
            symbol = normalize_symbol(symbol)
        except SymbolError as exc:
            raise BadParameter("symbol", str(exc)) from None
    if start is not None and end is not None and start > end:
        raise BadParameter("start", f"{start} is after end {end}")
    return ArtifactFilter(
        type=type, symbol=symbol, execution_id=execution_id, date=date, start=start, end=end
    )


def parse_cursor(raw: str | None) -> Cursor | None:
    return Cursor.decode(raw) if raw else None
