"""Chart figures: the daily and weekly chart renders beside the previous system's approach.

That approach is rebuilt here for the benchmark only: Plotly candlesticks with the same panels
(SMA 20/50/200 and Bollinger on the price, volume, RSI 14 with its 30/70 levels, MACD with signal
and histogram) from the same bars, exported to a PNG of the same pixel size by Kaleido driving
Chromium, in the same run. One browser is started for both charts and kept warm, so the baseline
pays for building the figure and exporting it, never for launching Chromium.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import struct
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd

from bench.stats import Figure, median, p95, skipped, timed
from trading_assets.charts.assets import WEEKLY_BARS_SHOWN
from trading_assets.charts.render import DPI, FIGSIZE_INCHES, render_chart, weekly_bars
from trading_assets.indicators import bollinger, macd, rsi, sma
from trading_assets.market_data.synthetic import synthetic_bars
from trading_assets.models import Timeframe

# Debian's Chromium, as `make browser-deps` installs it. BROWSER_PATH (choreographer's own
# variable) points elsewhere; Kaleido's Chrome download is never used (there is no internet).
CHROMIUM = "/usr/bin/chromium"
DAILY_BARS = 200
HISTORY = 520  # synthetic bars: enough for SMA 200 over all 200 bars shown
LAST_DAY = dt.date(2025, 5, 30)
TARGET_SECONDS = 0.25
TARGET_SPEEDUP = 10.0
TARGET = f"<= {TARGET_SECONDS:g} s and >= {TARGET_SPEEDUP:g}x the Plotly+Kaleido baseline"
KALEIDO_TIMEOUT_SECONDS = 60
WIDTH, HEIGHT = int(FIGSIZE_INCHES[0] * DPI), int(FIGSIZE_INCHES[1] * DPI)
UP_COLOR, DOWN_COLOR = "#26a69a", "#ef5350"
# (series, panel row, colour, legend label, width, dash): what the chart draws.
_LINES = (
    ("sma_20", 1, "#1f77b4", "SMA 20", 1.2, "solid"),
    ("sma_50", 1, "#ff7f0e", "SMA 50", 1.2, "solid"),
    ("sma_200", 1, "#9467bd", "SMA 200", 1.6, "solid"),
    ("bb_upper", 1, "#7f7f7f", "BB upper", 0.9, "dash"),
    ("bb_mid", 1, "#bcbcbc", "BB mid", 0.8, "dot"),
    ("bb_lower", 1, "#7f7f7f", "BB lower", 0.9, "dash"),
    ("rsi_14", 3, "#6a3d9a", "", 1.2, "solid"),
    ("macd", 4, "#1f77b4", "MACD", 1.2, "solid"),
    ("macd_signal", 4, "#ff7f0e", "Signal", 1.2, "solid"),
)


@dataclass(frozen=True)
class _Chart:
    """One chart to time both ways: the bars given, how many are shown, its title."""

    name: str
    bars: pd.DataFrame
    shown: int
    timeframe: Timeframe
    day: dt.date

    @property
    def title(self) -> str:
        return f"BENCH  ·  {self.timeframe.value}  ·  as of {self.day}"

    def render(self) -> None:
        render_chart(self.bars, symbol="BENCH", as_of=self.day, timeframe=self.timeframe,
                     bars_shown=self.shown)


def plotly_chart(bars: pd.DataFrame, *, bars_shown: int, title: str) -> Any:
    """The previous system's chart: a Plotly figure of the same candles, panels and size."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    close = bars["close"].astype(float)
    indicators = pd.concat(
        [bollinger(close, 20, 2.0), rsi(close, 14).rename("rsi_14"), macd(close)]
        + [sma(close, w).rename(f"sma_{w}") for w in (20, 50, 200)],
        axis=1,
    ).iloc[-bars_shown:]
    shown = bars.iloc[-bars_shown:]
    x = shown.index.strftime("%Y-%m-%d")
    up = (shown["close"] >= shown["open"]).to_numpy()
    fig = make_subplots(rows=4, cols=1, shared_xaxes=True, vertical_spacing=0.0,
                        row_heights=[5.0, 1.2, 1.6, 1.8])
    fig.add_trace(
        go.Candlestick(
            x=x, open=shown["open"], high=shown["high"], low=shown["low"], close=shown["close"],
            increasing_line_color=UP_COLOR, decreasing_line_color=DOWN_COLOR, showlegend=False,
        ),
        row=1, col=1,
    )
    fig.add_trace(
        go.Bar(x=x, y=shown["volume"], showlegend=False,
               marker_color=[UP_COLOR if u else DOWN_COLOR for u in up]),
        row=2, col=1,
    )
    for name, row, color, label, width, dash in _LINES:
        if indicators[name].notna().any():
            fig.add_trace(
                go.Scatter(x=x, y=indicators[name], mode="lines", name=label,
                           showlegend=bool(label),
                           line={"color": color, "width": width, "dash": dash}),
                row=row, col=1,
            )
    if indicators["rsi_14"].notna().any():
        for level in (30.0, 70.0):
            fig.add_hline(y=level, line={"color": "#888888", "width": 0.8, "dash": "dash"},
                          row=3, col=1)
    hist = indicators["macd_hist"]
    if hist.notna().any():
        fig.add_trace(
            go.Bar(x=x, y=hist, name="Histogram", opacity=0.6,
                   marker_color=[UP_COLOR if v >= 0 else DOWN_COLOR for v in hist.fillna(0)]),
            row=4, col=1,
        )
    fig.update_xaxes(type="category", rangeslider_visible=False, nticks=8)
    for row, label in ((1, "Price"), (2, "Volume"), (3, "RSI 14"), (4, "MACD")):
        fig.update_yaxes(title_text=label, side="right", row=row, col=1)
    fig.update_yaxes(range=[0, 100], tickvals=[30, 50, 70], row=3, col=1)
    fig.update_layout(
        title={"text": title, "x": 0.5}, width=WIDTH, height=HEIGHT, template="plotly_white",
        legend={"x": 0.01, "y": 0.99}, bargap=0.12,
    )
    return fig


async def _kaleido_times(charts: list[_Chart], repeat: int) -> list[list[float]]:
    import kaleido

    browser = os.environ.get("BROWSER_PATH", CHROMIUM)
    if not os.access(browser, os.X_OK):
        raise FileNotFoundError(f"no Chromium at {browser} (`make browser-deps` installs it)")
    opts = {"format": "png", "width": WIDTH, "height": HEIGHT, "scale": 1}
    # mathjax=False: Kaleido would fetch MathJax from a CDN, and there is no internet.
    async with kaleido.Kaleido(n=1, timeout=KALEIDO_TIMEOUT_SECONDS, mathjax=False,
                               path=browser) as k:

        async def export(chart: _Chart) -> bytes:
            fig = plotly_chart(chart.bars, bars_shown=chart.shown, title=chart.title)
            return await k.calc_fig(fig, opts=opts)

        all_times = []
        for chart in charts:
            png = await export(chart)  # warm: the first export loads plotly.js into the page
            size = struct.unpack(">II", png[16:24])
            if size != (WIDTH, HEIGHT):
                raise RuntimeError(f"Kaleido made a {size[0]}x{size[1]} PNG, not {WIDTH}x{HEIGHT}")
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                await export(chart)
                times.append(time.perf_counter() - started)
            all_times.append(times)
    return all_times


def plotly_times(charts: list[_Chart], repeat: int) -> list[list[float]] | str:
    """Seconds of ``repeat`` Plotly+Kaleido exports of each chart, or why they could not run."""
    try:
        return asyncio.run(_kaleido_times(charts, repeat))
    except ImportError as missing:
        return f"plotly/kaleido are not installed ({missing}); `uv sync` installs the dev group"
    # Whatever stops the browser (missing, crashed, timed out) becomes the reason in the table
    # that the baseline is missing; the chart renders are measured all the same.
    except Exception as failed:  # noqa: BLE001
        return f"Plotly+Kaleido failed: {type(failed).__name__}: {failed}"


def _figure(chart: _Chart, times: list[float], baseline: list[float] | None, note: str
            ) -> Figure:
    value = median(times)
    if baseline is None:
        return Figure(f"{chart.name}, median (p95 {p95(times):.3f} s)", value, "s", "-", None,
                      TARGET, None, f"{note}; the Plotly+Kaleido baseline was not measured")
    base = median(baseline)
    speedup = base / value
    return Figure(
        f"{chart.name}, median (p95 {p95(times):.3f} s, {speedup:.1f}x faster)",
        value,
        "s",
        "Plotly candlesticks, same panels, PNG by Kaleido on Chromium",
        base,
        TARGET,
        value <= TARGET_SECONDS and speedup >= TARGET_SPEEDUP,
        f"{note}; the baseline's p95 {p95(baseline):.3f} s over {len(baseline)} exports with "
        "the browser kept warm",
    )


def chart_figures(repeat: int, *, history: int = HISTORY, last_day: dt.date = LAST_DAY
                  ) -> list[Figure]:
    """The daily chart at 200 bars and the weekly chart, each beside Plotly+Kaleido."""
    bars = synthetic_bars("BENCH", last_day, history).bars
    charts = [
        _Chart("daily chart render", bars, DAILY_BARS, Timeframe.DAILY, last_day),
        _Chart("weekly chart render", weekly_bars(bars), WEEKLY_BARS_SHOWN, Timeframe.WEEKLY,
               last_day),
    ]
    for chart in charts:
        chart.render()  # warm: fonts load once per process
    renders = [timed(chart.render, repeat) for chart in charts]
    baselines = plotly_times(charts, repeat)
    figures = [
        _figure(chart, times, None if isinstance(baselines, str) else baselines[i],
                f"{chart.shown} bars shown, {WIDTH}x{HEIGHT} px, {repeat} renders")
        for i, (chart, times) in enumerate(zip(charts, renders, strict=True))
    ]
    if isinstance(baselines, str):
        figures.append(skipped("Plotly+Kaleido chart export", "s", TARGET, baselines))
    return figures
