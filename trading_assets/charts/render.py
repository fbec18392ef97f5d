"""Candlestick chart rendering (mplfinance, Agg) with SMA, Bollinger, volume, RSI and MACD panels,
and the daily-to-weekly resampling the weekly chart uses."""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import dataclass
from io import BytesIO

import matplotlib

# Workers have no display; the backend has to be chosen before pyplot is imported.
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import mplfinance as mpf  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.artist import Artist  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from trading_assets.indicators import bollinger, macd, rsi, sma  # noqa: E402
from trading_assets.models import BAR_COLUMNS, ChartImage, Timeframe  # noqa: E402

FIGSIZE_INCHES = (14.0, 10.0)
DPI = 100
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RSI_LEVELS = (30.0, 70.0)
_PANEL_LABELS = {"rsi": "RSI 14", "macd": "MACD"}
_PADDING = {"left": 0.25, "right": 0.75, "top": 0.45, "bottom": 0.5}
_PANEL_RATIOS = {"price": 5.0, "volume": 1.2, "rsi": 1.6, "macd": 1.8}
UP_COLOR, DOWN_COLOR = "#26a69a", "#ef5350"
BAR_WIDTH = 0.8  # in bar slots; mplfinance puts bar i at x = i

_MARKET_COLORS = mpf.make_marketcolors(
    up=UP_COLOR, down=DOWN_COLOR, edge="inherit", wick="inherit", volume="in"
)
_STYLE = mpf.make_mpf_style(
    base_mpf_style="yahoo",
    marketcolors=_MARKET_COLORS,
    gridstyle=":",
    gridcolor="#d0d0d0",
    # DejaVu has no semibold face: asking for it logs a findfont fallback warning.
    rc={
        "font.size": 10,
        "axes.labelsize": 10,
        "legend.fontsize": 8,
        "figure.titleweight": "bold",
        "axes.labelweight": "normal",
    },
)


@dataclass(frozen=True)
class _Line:
    """One indicator series and how to draw it."""

    name: str
    panel: str
    color: str
    label: str
    width: float = 1.2
    linestyle: str = "-"
    bar: bool = False


_LINES: tuple[_Line, ...] = (
    _Line("sma_20", "price", "#1f77b4", "SMA 20"),
    _Line("sma_50", "price", "#ff7f0e", "SMA 50"),
    _Line("sma_200", "price", "#9467bd", "SMA 200", width=1.6),
    _Line("bb_upper", "price", "#7f7f7f", "BB upper", width=0.9, linestyle="--"),
    _Line("bb_mid", "price", "#bcbcbc", "BB mid", width=0.8, linestyle=":"),
    _Line("bb_lower", "price", "#7f7f7f", "BB lower", width=0.9, linestyle="--"),
    _Line("rsi_14", "rsi", "#6a3d9a", ""),
    _Line("macd", "macd", "#1f77b4", "MACD"),
    _Line("macd_signal", "macd", "#ff7f0e", "Signal"),
    _Line("macd_hist", "macd", "#999999", "Histogram", bar=True),
)


def weekly_bars(daily: pd.DataFrame) -> pd.DataFrame:
    """Daily bars -> weekly bars for weeks ending Friday; weeks with no bars are dropped.

    Each week is labelled by its last actual daily bar, so a partial last week (or a week
    whose Friday is a holiday) never carries a date later than the data it holds.
    """
    if not isinstance(daily.index, pd.DatetimeIndex):
        raise ValueError("weekly_bars needs daily bars indexed by a DatetimeIndex of bar dates")
    missing = [c for c in BAR_COLUMNS if c not in daily.columns]
    if missing:
        raise ValueError(f"weekly_bars needs columns {list(BAR_COLUMNS)}; missing {missing}")
    daily = daily.sort_index()
    weeks = daily.groupby(daily.index.to_period("W-FRI"), sort=True)
    weekly = weeks.agg(
        open=("open", "first"),
        high=("high", "max"),
        low=("low", "min"),
        close=("close", "last"),
        volume=("volume", "sum"),
    )
    last_dates = (
        pd.Series(daily.index, index=daily.index)
        .groupby(daily.index.to_period("W-FRI"), sort=True)
        .max()
    )
    weekly.index = pd.DatetimeIndex(last_dates.to_numpy(), name="date")
    return weekly


def _indicator_frame(bars: pd.DataFrame) -> pd.DataFrame:
    close = bars["close"].astype(float)
    frame = pd.concat(
        [bollinger(close, 20, 2.0), rsi(close, 14).rename("rsi_14"), macd(close)], axis=1
    )
    for window in (20, 50, 200):
        frame[f"sma_{window}"] = sma(close, window)
    return frame


def _png_size(png: bytes) -> tuple[int, int]:
    # IHDR is always the first chunk: width and height are the big-endian ints at bytes 16-24.
    if png[:8] != PNG_MAGIC or png[12:16] != b"IHDR":
        raise RuntimeError("matplotlib did not produce a PNG (no PNG signature / IHDR chunk)")
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


def _clean(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 4)


def _panel_numbers(drawn: list[_Line]) -> dict[str, int]:
    # mplfinance needs consecutive panel ids, so a panel with nothing to draw gets no number.
    numbers = {"price": 0, "volume": 1}
    for panel in ("rsi", "macd"):
        if any(line.panel == panel for line in drawn):
            numbers[panel] = len(numbers)
    return numbers


def _draw_histogram(ax: Axes, values: pd.Series) -> None:
    """Histogram bars as a single PolyCollection.

    mplfinance's type="bar" adds one Rectangle patch per bar, which costs about as much as the
    whole rest of the MACD panel.
    """
    heights = values.to_numpy(dtype=float)
    x = np.arange(len(heights), dtype=float)
    keep = ~np.isnan(heights)
    x, heights = x[keep], heights[keep]
    half = BAR_WIDTH / 2
    verts = np.stack(
        [
            np.column_stack([x - half, np.zeros_like(x)]),
            np.column_stack([x - half, heights]),
            np.column_stack([x + half, heights]),
            np.column_stack([x + half, np.zeros_like(x)]),
        ],
        axis=1,
    )
    colors = np.where(heights >= 0, UP_COLOR, DOWN_COLOR)
    ax.add_collection(
        PolyCollection(list(verts), facecolors=colors, linewidths=0, alpha=0.6), autolim=True
    )
    ax.autoscale_view(scalex=False)


def _addplots(
    window: pd.DataFrame, drawn: list[_Line], panels: dict[str, int]
) -> list[dict[str, object]]:
    plots: list[dict[str, object]] = []
    for line in drawn:
        if line.bar:
            continue  # drawn by _draw_histogram: one collection, not a patch per bar
        common: dict[str, object] = dict(panel=panels[line.panel], secondary_y=False)
        if line.label:
            common["label"] = line.label
        if line.panel in _PANEL_LABELS:
            common["ylabel"] = _PANEL_LABELS[line.panel]
        plots.append(
            mpf.make_addplot(
                window[line.name],
                color=line.color,
                width=line.width,
                linestyle=line.linestyle,
                **common,
            )
        )
    if "rsi" in panels:
        for level in RSI_LEVELS:
            guide = pd.Series(level, index=window.index)
            plots.append(
                mpf.make_addplot(
                    guide,
                    panel=panels["rsi"],
                    color="#888888",
                    width=0.8,
                    linestyle="--",
                    secondary_y=False,
                    ylim=(0, 100),
                )
            )
    return plots


def _finish_panels(
    axes: list[Axes], window: pd.DataFrame, drawn: list[_Line], panels: dict[str, int]
) -> None:
    # mplfinance returns a (primary, secondary) pair of axes per panel.
    if "rsi" in panels:
        # Only the levels that matter, so the 0 and 100 labels don't collide with neighbours.
        axes[2 * panels["rsi"]].set_yticks((RSI_LEVELS[0], 50.0, RSI_LEVELS[1]))
    extra: dict[str, list[Artist]] = {"price": [], "macd": []}
    if "macd" in panels and any(line.bar for line in drawn):
        _draw_histogram(axes[2 * panels["macd"]], window["macd_hist"])
        extra["macd"].append(Patch(facecolor="#999999", alpha=0.6, label="Histogram"))
    for panel, more in extra.items():
        if panel not in panels:
            continue
        ax = axes[2 * panels[panel]]
        handles = ax.get_legend_handles_labels()[0] + more
        if handles:
            # A fixed corner: loc="best" is searched at draw time against every data point.
            ax.legend(handles=handles, loc="upper left", framealpha=0.85)


def _draw(
    shown: pd.DataFrame,
    window: pd.DataFrame,
    drawn: list[_Line],
    panels: dict[str, int],
    *,
    title: str,
) -> bytes:
    open_before = set(plt.get_fignums())
    fig = None
    try:
        fig, axes = mpf.plot(
            shown,
            type="candle",
            style=_STYLE,
            volume=True,
            volume_panel=panels["volume"],
            addplot=_addplots(window, drawn, panels),
            panel_ratios=tuple(_PANEL_RATIOS[name] for name in panels),
            figsize=FIGSIZE_INCHES,
            title=title,
            ylabel="Price",
            ylabel_lower="Volume",
            datetime_format="%Y-%m-%d",
            xrotation=0,
            # tight_layout would mean a second layout pass (bbox_inches="tight"): slow.
            tight_layout=False,
            scale_padding=_PADDING,
            warn_too_much_data=100_000,
            returnfig=True,
            closefig=False,
        )
        _finish_panels(axes, window, drawn, panels)
        buffer = BytesIO()
        fig.savefig(buffer, dpi=DPI, format="png")
        return buffer.getvalue()
    except Exception:
        # A figure left in pyplot's registry is never garbage collected: drop a half-built one.
        for number in set(plt.get_fignums()) - open_before:
            plt.close(number)
        raise
    finally:
        if fig is not None:
            plt.close(fig)


def render_chart(
    bars: pd.DataFrame,
    *,
    symbol: str,
    as_of: dt.date,
    timeframe: Timeframe,
    bars_shown: int = 120,
) -> ChartImage:
    """Render the last ``bars_shown`` bars as a PNG; indicators use the whole history given.

    Indicator series with no value in the shown window are left out and listed in
    ``omitted_indicators`` (mplfinance cannot draw an all-NaN series).
    """
    if bars_shown < 1:
        raise ValueError(f"bars_shown must be at least 1 to draw a chart, got {bars_shown}")
    missing = [c for c in BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise ValueError(f"render_chart needs columns {list(BAR_COLUMNS)}; missing {missing}")
    if bars.empty:
        raise ValueError(f"no bars to chart for {symbol} as of {as_of}")
    if not isinstance(bars.index, pd.DatetimeIndex):
        raise ValueError("render_chart needs bars indexed by a DatetimeIndex of bar dates")
    indicators = _indicator_frame(bars)
    window = indicators.iloc[-bars_shown:]
    shown = bars.iloc[-bars_shown:][list(BAR_COLUMNS)].astype(float)
    drawn = [line for line in _LINES if window[line.name].notna().any()]
    omitted = [line.name for line in _LINES if line not in drawn]
    panels = _panel_numbers(drawn)

    png = _draw(
        shown, window, drawn, panels, title=f"{symbol}  ·  {timeframe.value}  ·  as of {as_of}"
    )
    width, height = _png_size(png)
    return ChartImage(
        symbol=symbol,
        as_of=as_of,
        timeframe=timeframe,
        png=png,
        width=width,
        height=height,
        bars_shown=len(shown),
        indicators=[line.name for line in drawn],
        omitted_indicators=omitted,
        last_values={line.name: _clean(window[line.name].iloc[-1]) for line in drawn},
    )
