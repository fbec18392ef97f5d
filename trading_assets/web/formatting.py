"""How values look on the pages (Jinja filters): times, sizes, prices, percentages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any


def when(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


def size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, scale in (("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def price(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def money(value: float | None) -> str:
    return "-" if value is None else f"${value:,.2f}"


def pct(value: float | None, digits: int = 2) -> str:
    """A fraction as a percentage: 0.0123 -> +1.23%."""
    return "-" if value is None else f"{value * 100:+.{digits}f}%"


def short(run_id: str | None) -> str:
    return run_id[:8] if run_id else "-"


def number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


FILTERS: dict[str, Callable[..., str]] = {
    "when": when, "size": size, "price": price, "money": money, "pct": pct, "short": short,
    "number": number,
}
