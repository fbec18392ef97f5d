"""A symbol's signals on its price: the close, each signal's action, entry, stop and target.

Pure (no Dagster, no stores): bars and signal marks in, PNG bytes out, rendered with Matplotlib's
object API on the Agg canvas (thread-safe: no pyplot state).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

SESSIONS_SHOWN = 260
LEVEL_DAYS = 12  # how far to the right of its day a signal's entry/stop/target reaches
_MARKERS = {"BUY": ("^", "#1a7f37"), "SELL": ("v", "#cf222e"), "HOLD": ("o", "#8c959f")}


@dataclass(frozen=True)
class SignalMark:
    day: dt.date
    action: str
    entry: float | None = None
    stop: float | None = None
    target: float | None = None

    @classmethod
    def from_signal_data(cls, day: dt.date, data: Mapping[str, Any]) -> SignalMark:
        """From a signal row's ``signal_data`` (the TradingSignal's JSON)."""
        return cls(
            day=day,
            action=str(data.get("action", "HOLD")),
            entry=data.get("entry_price"),
            stop=data.get("stop_loss"),
            target=data.get("take_profit"),
        )


def render_signal_chart(
    bars: pd.DataFrame, marks: Sequence[SignalMark], *, symbol: str,
    sessions: int = SESSIONS_SHOWN,
) -> bytes:
    """PNG of the last ``sessions`` closes with every mark that falls inside them."""
    recent = bars.iloc[-sessions:]
    figure = Figure(figsize=(11, 4.4), dpi=100)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    ax.plot(recent.index, recent["close"], color="#24292f", linewidth=1.2)
    dates = recent.index
    shown = 0
    rightmost = dates[-1] if len(dates) else pd.Timestamp.min
    for mark in marks:
        when = pd.Timestamp(mark.day)
        if len(dates) == 0 or when < dates[0] or when > dates[-1]:
            continue
        shown += 1
        position = min(int(dates.searchsorted(when)), len(dates) - 1)
        close = float(recent["close"].iloc[position])
        symbol_marker, color = _MARKERS.get(mark.action, _MARKERS["HOLD"])
        ax.scatter([dates[position]], [close], marker=symbol_marker, color=color, s=70, zorder=3)
        # Calendar days, not bars: a signal on the last bar still shows its levels.
        right = dates[position] + pd.Timedelta(days=LEVEL_DAYS)
        rightmost = max(rightmost, right)
        for level, level_color, style in (
            (mark.entry, "#0969da", "-"), (mark.stop, "#cf222e", "--"),
            (mark.target, "#1a7f37", "--"),
        ):
            if level is not None and mark.action != "HOLD":
                ax.hlines(level, dates[position], right, colors=level_color, linestyles=style,
                          linewidth=1.4, zorder=2)
    if len(dates):
        ax.set_xlim(dates[0], rightmost)
    first, last = (dates[0].date(), dates[-1].date()) if len(dates) else ("-", "-")
    ax.set_title(f"{symbol}: close {first} to {last}, {shown} signal(s)", loc="left", fontsize=11)
    ax.grid(alpha=0.25)
    ax.legend(
        handles=[
            Line2D([], [], color="#24292f", label="close"),
            Line2D([], [], marker="^", color="#1a7f37", linestyle="", label="BUY"),
            Line2D([], [], marker="v", color="#cf222e", linestyle="", label="SELL"),
            Line2D([], [], marker="o", color="#8c959f", linestyle="", label="HOLD"),
            Line2D([], [], color="#0969da", label="entry"),
            Line2D([], [], color="#cf222e", linestyle="--", label="stop"),
            Line2D([], [], color="#1a7f37", linestyle="--", label="target"),
        ],
        loc="upper left", fontsize=8, ncols=7, frameon=False, bbox_to_anchor=(0, -0.08),
    )
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
