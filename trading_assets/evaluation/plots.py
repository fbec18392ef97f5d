"""The scorecard's two PNG plots: the account that followed the signals, and calibration.

matplotlib is imported inside the functions (the code location must load fast) and drawn on an
Agg canvas of its own, without pyplot's global state.
"""

from __future__ import annotations

import io
import struct
from typing import TYPE_CHECKING

from trading_assets.evaluation.models import EquityCurve, GroupScore, Interval, PlotImage

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

WIDTH_IN, HEIGHT_IN, DPI = 10, 6, 100  # 1000 x 600 px
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _figure() -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> tuple[bytes, int, int]:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    png = buffer.getvalue()
    # IHDR is always the first chunk: width and height are the big-endian ints at bytes 16-24.
    if png[:8] != PNG_MAGIC or png[12:16] != b"IHDR":
        raise RuntimeError("matplotlib did not produce a PNG (no PNG signature / IHDR chunk)")
    width, height = struct.unpack(">II", png[16:24])
    return png, int(width), int(height)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:+.2f}%"


def _sharpe(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def equity_curve_png(curve: EquityCurve) -> PlotImage:
    """Strategy against buy-and-hold, their total return, Sharpe and max drawdown in the legend."""
    fig = _figure()
    ax = fig.add_subplot()
    s, b = curve.strategy_stats, curve.buy_and_hold_stats
    for values, name, stats, style in (
        (curve.strategy, "signals", s, {"color": "tab:blue", "linewidth": 1.6}),
        (curve.buy_and_hold, "buy and hold", b, {"color": "tab:gray", "linewidth": 1.2}),
    ):
        label = (
            f"{name}: total {_pct(stats.total_return)}, Sharpe {_sharpe(stats.annualised_sharpe)},"
            f" max drawdown {_pct(stats.max_drawdown)}"
        )
        ax.plot(curve.dates, values, label=label, **style)
    ax.axhline(curve.starting_cash, color="black", linewidth=0.6, linestyle=":")
    period = f"{curve.dates[0]} to {curve.dates[-1]}" if curve.dates else "no days"
    title = f"Account following the signals vs buy and hold, {period}"
    ax.set_title(title)
    ax.set_ylabel("account value (USD)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=9)
    # Fixed margins instead of tight_layout: a third of the drawing time, and the same layout.
    fig.subplots_adjust(left=0.09, right=0.98, top=0.93, bottom=0.08)
    png, width, height = _png(fig)
    return PlotImage(
        name="equity_curve", title=title, png=png, width=width, height=height,
        as_of=curve.dates[-1] if curve.dates else None,
    )


def _hit_panel(ax: Axes, labels: list[str], rates: list[Interval], counts: list[int]) -> None:
    from matplotlib.ticker import PercentFormatter

    xs = list(range(len(labels)))
    shown = [(x, iv) for x, iv in zip(xs, rates, strict=True) if iv.estimate is not None]
    for x, iv in shown:
        assert iv.estimate is not None
        if iv.low is not None and iv.high is not None:
            ax.errorbar(
                x, iv.estimate, yerr=[[iv.estimate - iv.low], [iv.high - iv.estimate]],
                fmt="o", color="tab:blue", capsize=4,
            )
        else:
            ax.plot(x, iv.estimate, "o", color="tab:blue", fillstyle="none")
    if not shown:
        ax.text(0.5, 0.5, "no BUY/SELL signals yet", transform=ax.transAxes, ha="center")
    ax.axhline(0.5, color="tab:red", linestyle="--", linewidth=1, label="50% (a coin)")
    ax.set_xticks(xs, [f"{label}\nn={n}" for label, n in zip(labels, counts, strict=True)],
                  fontsize=8)
    ax.set_xlim(-0.5, len(labels) - 0.5)
    ax.set_ylim(-0.03, 1.03)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylabel("realized hit rate")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)


def calibration_png(score: GroupScore, horizon: int = 5) -> PlotImage:
    """Realized directional hit rate (BUY/SELL) by score decile and by confidence level, with
    the 95 % intervals and the 50 % line; ``n`` under each bucket is its BUY/SELL count."""
    fig = _figure()
    deciles = [r for r in score.calibration if r.kind == "decile"]
    levels = [r for r in score.calibration if r.kind == "level"]
    grid = fig.add_gridspec(
        1, 2, width_ratios=[3, 1], left=0.07, right=0.98, top=0.9, bottom=0.14, wspace=0.18
    )
    for cell, rows, what in ((grid[0], deciles, "score decile"), (grid[1], levels, "level")):
        ax = fig.add_subplot(cell)
        rates = [r.hit_rate.get(horizon, Interval(estimate=None)) for r in rows]
        _hit_panel(ax, [r.bucket for r in rows], rates, [iv.n for iv in rates])
        ax.set_xlabel(what)
    name = "all signals" if score.by == "all" else f"{score.by} {score.key}"
    title = f"Calibration at {horizon} sessions: hit rate by confidence ({name})"
    fig.suptitle(title)
    png, width, height = _png(fig)
    return PlotImage(name="calibration", title=title, png=png, width=width, height=height)
