"""The browser's pages: the list grouped by run, one artifact, one symbol (server-rendered)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse

from sql.schema import ARTIFACT_TYPES
from trading_assets.models import MarketData
from trading_assets.partitions import SymbolError, normalize_symbol
from trading_assets.web import views
from trading_assets.web.context import Browser, browser
from trading_assets.web.errors import BadParameter, NotFound
from trading_assets.web.params import CursorParam, artifact_filter, parse_cursor
from trading_assets.web.queries import ArtifactFilter
from trading_assets.web.symbol_chart import SignalMark, render_signal_chart

router = APIRouter(include_in_schema=False)
Dep = Annotated[Browser, Depends(browser)]


def _render(request: Request, template: str, context: dict[str, Any]) -> HTMLResponse:
    templates = request.app.state.templates
    response: HTMLResponse = templates.TemplateResponse(request, template, context)
    return response


@router.get("/", response_class=HTMLResponse)
def index(
    request: Request,
    b: Dep,
    where: Annotated[ArtifactFilter, Depends(artifact_filter)],
    view: Literal["runs", "list"] = "runs",
    limit: Annotated[int, Query(ge=1, le=500)] = 70,
    cursor: CursorParam = None,
) -> HTMLResponse:
    page = b.stores.queries.page(where, limit, parse_cursor(cursor))
    older = (
        str(request.url.include_query_params(cursor=page.next_cursor))
        if page.next_cursor else None
    )
    return _render(request, "list.html", {
        "where": where,
        "view": view,
        "types": ARTIFACT_TYPES,
        "rows": page.rows,
        "groups": views.group_by_run(b, page.rows) if view == "runs" else [],
        "total": b.stores.queries.count(where),
        "older": older,
        "newest": str(request.url.remove_query_params("cursor")) if cursor else None,
        "summary": views.summary,
    })


@router.get("/artifacts/{artifact_id}", response_class=HTMLResponse)
def artifact_page(artifact_id: int, request: Request, b: Dep) -> HTMLResponse:
    row = b.stores.queries.get(artifact_id)
    if row is None:
        raise NotFound(f"no artifact #{artifact_id} in the {b.stores.queries.describe()}")
    context = views.detail(b, row)
    run_id = row["execution_id"]
    context["run"] = b.runs.lookup([run_id])[run_id] if run_id else None
    return _render(request, "detail.html", context)


def _symbol(raw: str) -> str:
    try:
        return normalize_symbol(raw)
    except SymbolError as exc:
        raise BadParameter("symbol", str(exc)) from None


@router.get("/symbols/{symbol}", response_class=HTMLResponse)
def symbol_page(symbol: str, request: Request, b: Dep) -> HTMLResponse:
    symbol = _symbol(symbol)
    signals = b.stores.queries.signals(symbol)
    market = b.stores.queries.newest(ArtifactFilter(symbol=symbol, step_name="market_data"))
    if not signals and market is None:
        raise NotFound(f"no signal or market data of {symbol} in the "
                       f"{b.stores.queries.describe()}: run the pipeline for it first")
    return _render(request, "symbol.html", {
        "symbol": symbol,
        "signals": list(reversed(signals)),
        "market": market,
        "scorecard": views.latest_scorecard(b),
    })


class _ChartCache:
    """The last few rendered symbol charts, keyed by the rows they were drawn from."""

    def __init__(self, size: int = 32) -> None:
        self._items: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> bytes | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
            return self._items.get(key)

    def put(self, key: tuple[Any, ...], png: bytes) -> None:
        with self._lock:
            self._items[key] = png
            while len(self._items) > self._size:
                self._items.popitem(last=False)


_CHARTS = _ChartCache()


@router.get("/symbols/{symbol}/chart.png")
def symbol_chart(symbol: str, b: Dep) -> Response:
    """The symbol's newest market data with every signal's action, entry, stop and target."""
    symbol = _symbol(symbol)
    market = b.stores.queries.newest(ArtifactFilter(symbol=symbol, step_name="market_data"))
    if market is None:
        raise NotFound(f"no market data of {symbol} to draw its signals on")
    signals = b.stores.queries.signals(symbol)
    key = (b.stores.queries.describe(), market["id"], tuple(r["id"] for r in signals))
    png = _CHARTS.get(key)
    if png is None:
        data = b.stores.value(market)
        assert isinstance(data, MarketData)
        marks = [
            SignalMark.from_signal_data(r["partition_date"], r["signal_data"] or {})
            for r in signals if r["partition_date"] is not None
        ]
        png = render_signal_chart(data.bars, marks, symbol=symbol)
        _CHARTS.put(key, png)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-cache"})

