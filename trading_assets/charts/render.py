"""Candlestick chart rendering with SMA, Bollinger, volume, RSI and MACD panels, and the
daily-to-weekly resampling the weekly chart uses.

The chart is a fixed layout, so it is drawn as a handful of Matplotlib artists placed in pixels
on a Figure of its own (no Axes, no pyplot) over a background, grid and ticks painted straight
into the pixels; its text is rendered by FreeType into masks that are cached and blended in, and
the PNG is written with zlib directly. Each of these replaced the part of the mplfinance chart
that took most of its time (0.65 s at 200 bars, now a tenth of that).
"""

from __future__ import annotations

import datetime as dt
import struct
import zlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg, get_hinting_flag
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgba_array
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties, findfont, get_font
from matplotlib.lines import Line2D
from matplotlib.patches import FancyBboxPatch, PathPatch, Rectangle
from matplotlib.path import Path
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import Bbox, BboxTransform, IdentityTransform, Transform

from trading_assets.charts.spec import DPI, FIGSIZE_INCHES, HEIGHT_PX, PNG_MAGIC, WIDTH_PX
from trading_assets.indicators import bollinger, macd, rsi, sma
from trading_assets.models import BAR_COLUMNS, ChartImage, Timeframe

# zlib level 3 on unfiltered rows: smaller than savefig's PNG of the same image (PIL, adaptive
# filters, level 6) in a fraction of its time; from level 4 on, zlib's time doubles.
PNG_COMPRESS_LEVEL = 3
RSI_LEVELS = (30.0, 70.0)
_PANEL_LABELS = {"price": "Price", "volume": "Volume", "rsi": "RSI 14", "macd": "MACD"}
_PANEL_RATIOS = {"price": 5.0, "volume": 1.2, "rsi": 1.6, "macd": 1.8}
# The panels' stack, in figure fractions.
_LEFT, _RIGHT, _BOTTOM, _TOP, _TITLE_TOP = 0.045, 0.925, 0.09, 0.9458, 0.98
UP_COLOR, DOWN_COLOR = "#26a69a", "#ef5350"
FACE_COLOR, EDGE_COLOR, GRID_COLOR, TEXT_COLOR = "#fafafa", "#f0f0f0", "#d0d0d0", "#101010"
# Candle body and volume bar widths (bar slots: bar i is at x = i) and the candle line width
# (points) by the number of bars shown, as mplfinance drew them, narrower as bars crowd in.
_WIDTHS_AT = (30, 60, 104, 130, 200, 300)
_BODY_WIDTHS = (0.65, 0.575, 0.474, 0.442, 0.422, 0.415)
_VOLUME_WIDTHS = (0.98, 0.96, 0.938, 0.917, 0.883, 0.825)
_CANDLE_LINE_WIDTHS = (1.0, 0.875, 0.692, 0.583, 0.436, 0.435)
HIST_WIDTH = 0.8
MAX_DATE_TICKS = 8
_TICK_STEPS = (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000)
_VOLUME_UNITS = ((1e9, "B"), (1e6, "M"), (1e3, "K"))
_PX = DPI / 72.0  # pixels in a point
TICK_FONT, LEGEND_FONT, TITLE_FONT = 10.0, 8.0, 14.4  # points
# Matplotlib's default tick length, tick label pad and axis label pad (points), in pixels; and
# its axes and grid line width (points).
_TICK_LENGTH, _TICK_PAD, _LABEL_PAD, _LINE_WIDTH = 3.5 * _PX, 3.5 * _PX, 4.0 * _PX, 0.8
# How many rendered strings to keep: the numbers, dates and labels of a long backfill.
_TEXT_CACHE = 2048


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
    frame["sma_20"] = frame["bb_mid"]  # the Bollinger mid line is the SMA 20: not computed twice
    for window in (50, 200):
        frame[f"sma_{window}"] = sma(close, window)
    return frame


def _png_size(png: bytes) -> tuple[int, int]:
    # IHDR is always the first chunk: width and height are the big-endian ints at bytes 16-24.
    if png[:8] != PNG_MAGIC or png[12:16] != b"IHDR":
        raise RuntimeError("the chart was not encoded as a PNG (no PNG signature / IHDR chunk)")
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


def _clean(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 4)


# -- text -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Glyphs:
    """A string rendered once by FreeType: its coverage mask and where its baseline falls."""

    mask: np.ndarray  # rows x columns of ink coverage, 0-255
    width: float
    ink: float  # height from the top of the ink to the lowest descender
    baseline: int  # mask rows above the baseline


@lru_cache(maxsize=_TEXT_CACHE)
def _glyphs(text: str, size: float, bold: bool = False) -> _Glyphs:
    # Drawn through Matplotlib's renderer, each glyph would be rasterised again for every chart
    # (most of the time this chart took); the same strings recur from chart to chart.
    font = get_font(findfont(FontProperties(size=size, weight="bold" if bold else "normal")))
    font.clear()
    font.set_size(size, DPI)
    font.set_text(text, 0.0, flags=get_hinting_flag())
    font.draw_glyphs_to_bitmap(antialiased=True)
    mask = np.array(font.get_image(), dtype=np.uint8)
    mask.flags.writeable = False  # shared by every chart that draws this string
    width, ink = (v / 64 for v in font.get_width_height())
    # The bitmap has one row of padding above the ink.
    return _Glyphs(mask, width, ink, 1 + round(ink - font.get_descent() / 64))


@dataclass(frozen=True)
class _Text:
    """A string to blend into the image at (x, y) in pixels from the bottom left."""

    text: str
    x: float
    y: float
    ha: str = "left"  # left, center or right of the text at x
    va: str = "baseline"  # baseline, center or top of the text at y
    size: float = TICK_FONT
    color: str = TEXT_COLOR
    bold: bool = False
    vertical: bool = False  # turned a quarter left, to read upwards


def _font_extent(size: float) -> tuple[float, float]:
    """How far the font reaches above and below its baseline, in pixels."""
    font = get_font(findfont(FontProperties(size=size)))
    scale = size * _PX / font.units_per_EM
    return font.ascender * scale, -font.descender * scale


def _blend(image: np.ndarray, text: _Text) -> None:
    """Paint ``text`` into ``image`` (rows top-down, RGB) in its colour, by its coverage."""
    glyphs = _glyphs(text.text, text.size, text.bold)
    mask = np.rot90(glyphs.mask) if text.vertical else glyphs.mask
    row = HEIGHT_PX - text.y
    if text.vertical:  # centred both ways, the only way the panel labels are placed
        top, left = row - mask.shape[0] / 2, text.x - mask.shape[1] / 2
    else:
        left = text.x - {"left": 0.0, "center": glyphs.width / 2, "right": glyphs.width}[text.ha]
        top = row - {"baseline": glyphs.baseline, "center": 1 + glyphs.ink / 2, "top": 1}[text.va]
    top, left = round(top), round(left)
    rows, cols = mask.shape
    # Cut to the image, for a label that would run off an edge.
    r0, c0 = max(0, -top), max(0, -left)
    r1, c1 = min(rows, image.shape[0] - top), min(cols, image.shape[1] - left)
    if r0 >= r1 or c0 >= c1:
        return
    cover = mask[r0:r1, c0:c1, None].astype(np.float32) / 255.0
    region = image[top + r0 : top + r1, left + c0 : left + c1]
    ink = to_rgba_array(text.color)[0, :3].astype(np.float32) * 255.0
    region[:] = (region * (1.0 - cover) + ink * cover + 0.5).astype(np.uint8)


# -- panels -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Panel:
    """One panel: its box in pixels (from the bottom left) and the data range it shows."""

    name: str
    box: Bbox
    xlim: tuple[float, float]
    ylim: tuple[float, float]

    @property
    def data(self) -> Transform:
        (x0, x1), (y0, y1) = self.xlim, self.ylim
        return BboxTransform(Bbox([[x0, y0], [x1, y1]]), self.box)

    def y_px(self, values: np.ndarray) -> np.ndarray:
        (y0, y1), box = self.ylim, self.box
        return box.y0 + (np.asarray(values, dtype=float) - y0) / (y1 - y0) * box.height

    def x_px(self, values: np.ndarray) -> np.ndarray:
        (x0, x1), box = self.xlim, self.box
        return box.x0 + (np.asarray(values, dtype=float) - x0) / (x1 - x0) * box.width


def _panels(drawn: list[_Line]) -> list[str]:
    """The panels top to bottom: price and volume always, RSI and MACD when they have a line."""
    return ["price", "volume"] + [
        panel for panel in ("rsi", "macd") if any(line.panel == panel for line in drawn)
    ]


def _boxes(names: list[str]) -> dict[str, Bbox]:
    unit = (_TOP - _BOTTOM) / sum(_PANEL_RATIOS[name] for name in names)
    boxes, top = {}, _TOP
    for name in names:
        bottom = top - _PANEL_RATIOS[name] * unit
        boxes[name] = Bbox(
            [[_LEFT * WIDTH_PX, bottom * HEIGHT_PX], [_RIGHT * WIDTH_PX, top * HEIGHT_PX]]
        )
        top = bottom
    return boxes


def _span(*series: np.ndarray) -> tuple[float, float]:
    """The lowest and highest finite value of the series, padded by Matplotlib's 5 % margin."""
    values = np.concatenate([np.ravel(s) for s in series])
    values = values[np.isfinite(values)]
    low, high = (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)
    pad = (high - low) * 0.05 or abs(high) * 0.05 or 1.0
    return low - pad, high + pad


def _rectangles(x: np.ndarray, bottom: np.ndarray, top: np.ndarray, width: float) -> Path:
    """Rectangles centred on ``x``, as one compound path."""
    half = width / 2
    corners = np.empty((len(x), 5, 2))
    corners[:, :, 0] = np.column_stack([x - half, x - half, x + half, x + half, x - half])
    corners[:, :, 1] = np.column_stack([bottom, top, top, bottom, bottom])
    codes = np.tile([Path.MOVETO, Path.LINETO, Path.LINETO, Path.LINETO, Path.CLOSEPOLY], len(x))
    return Path(corners.reshape(-1, 2), codes)


def _segments(x: np.ndarray, low: np.ndarray, high: np.ndarray) -> Path:
    """Vertical segments from ``low`` to ``high`` at ``x``, as one compound path."""
    ends = np.stack([np.column_stack([x, low]), np.column_stack([x, high])], axis=1)
    return Path(ends.reshape(-1, 2), np.tile([Path.MOVETO, Path.LINETO], len(x)))


def _by_bars(count: int, widths: tuple[float, ...]) -> float:
    return float(np.interp(count, _WIDTHS_AT, widths))


def _in_panel(panel: _Panel, artist: Artist, zorder: float) -> Artist:
    artist.set_transform(panel.data)
    artist.set_clip_box(panel.box)
    artist.set_zorder(zorder)
    return artist


def _shapes(panel: _Panel, path: Path, color: str, zorder: float, **style: Any) -> Artist:
    # One patch per colour, of one path holding every bar: a collection would build, colour and
    # draw a path per bar. Snapped to the pixel grid, as a collection's rectangles are.
    return _in_panel(panel, PathPatch(path, color=color, snap=True, **style), zorder)


def _candles(panel: _Panel, x: np.ndarray, shown: pd.DataFrame) -> list[Artist]:
    """Wicks and bodies, rising and falling: four patches, whatever the number of bars."""
    open_, high, low, close = (shown[c].to_numpy(dtype=float) for c in BAR_COLUMNS[:4])
    wick, body = _by_bars(len(x), _CANDLE_LINE_WIDTHS), _by_bars(len(x), _BODY_WIDTHS)
    artists = []
    for rising, color in ((True, UP_COLOR), (False, DOWN_COLOR)):
        these = (close >= open_) == rising
        if not these.any():
            continue
        xs, o, c = x[these], open_[these], close[these]
        artists += [
            _shapes(panel, _segments(xs, low[these], high[these]), color, 1.0, fill=False,
                    linewidth=wick),
            _shapes(panel, _rectangles(xs, np.minimum(o, c), np.maximum(o, c), body), color,
                    1.1, linewidth=wick, alpha=0.9),
        ]
    return artists


def _bars(panel: _Panel, x: np.ndarray, heights: np.ndarray, width: float, up: np.ndarray,
          alpha: float = 1.0) -> list[Artist]:
    """Bars from zero, in the rising colour where ``up`` and the falling one elsewhere."""
    artists = []
    for rising, color in ((True, UP_COLOR), (False, DOWN_COLOR)):
        these = ~np.isnan(heights) & (up == rising)
        if these.any():
            path = _rectangles(x[these], np.zeros(int(these.sum())), heights[these], width)
            artists.append(_shapes(panel, path, color, 1.0, linewidth=0, alpha=alpha))
    return artists


def _line(panel: _Panel, x: np.ndarray, y: np.ndarray, line: _Line) -> Artist:
    return _in_panel(
        panel,
        Line2D(x, y, color=line.color, linewidth=line.width, linestyle=line.linestyle),
        2.0,
    )


# -- axes furniture: grid, ticks, labels, legends ---------------------------------------------


def _date_ticks(dates: pd.DatetimeIndex) -> tuple[list[int], list[str]]:
    """At most MAX_DATE_TICKS bar positions, a round number of bars apart, and their dates."""
    step = next((s for s in _TICK_STEPS if len(dates) / s <= MAX_DATE_TICKS), _TICK_STEPS[-1])
    positions = list(range(0, len(dates), step))
    return positions, [dates[i].strftime("%Y-%m-%d") for i in positions]


def _value_ticks(panel: _Panel) -> tuple[np.ndarray, list[str]]:
    """Round values inside the panel's range, as many as fit (Matplotlib's AutoLocator rule)."""
    if panel.name == "rsi":
        # Only the levels that matter, so the 0 and 100 labels don't collide with neighbours.
        levels = np.array([RSI_LEVELS[0], 50.0, RSI_LEVELS[1]])
        return levels, [f"{v:g}" for v in levels]
    low, high = panel.ylim
    bins = max(1, min(9, int(panel.box.height / _PX // (2 * TICK_FONT))))
    ticks = MaxNLocator(nbins=bins, steps=[1, 2, 2.5, 5, 10]).tick_values(low, high)
    ticks = ticks[(ticks >= low) & (ticks <= high)]
    step = float(np.diff(ticks).min()) if len(ticks) > 1 else 1.0
    decimals = next(
        (d for d in range(7) if np.allclose(np.round(ticks, d), ticks, rtol=0, atol=step * 1e-6)),
        6,
    )
    # Matplotlib's minus sign, so the labels read as before.
    return ticks, [f"{t:.{decimals}f}".replace("-", "\u2212") for t in ticks + 0.0]


def _pixel(color: str) -> np.uint32:
    """``color`` as one RGBA pixel, its four bytes read as one 32-bit word."""
    return (to_rgba_array(color)[0] * 255).round().astype(np.uint8).view(np.uint32)[0]


def _furniture(
    pixels: np.ndarray,
    panels: list[_Panel],
    dates: tuple[list[int], list[str]],
    labels: dict[str, str],
) -> list[_Text]:
    """Paint the figure, panel faces and edges, dotted grid and tick marks into ``pixels``
    (rows top-down, RGBA); return the tick and panel labels to blend in once the data is drawn.

    These are one-pixel lines on the pixel grid, so they are set directly: as artists, Agg would
    rasterise each of the grid's some ten thousand dots as a path of its own.
    """
    # One 32-bit word a pixel: numpy fills words at memory speed, 4-byte patterns 50x slower.
    words = pixels.view(np.uint32)[..., 0]
    face, edge, grid, tick = (_pixel(c) for c in (FACE_COLOR, EDGE_COLOR, GRID_COLOR, TEXT_COLOR))
    tick_length = round(_TICK_LENGTH)
    words[:] = _pixel("white")
    texts = []
    for panel in panels:
        box = panel.box
        top, bottom = round(HEIGHT_PX - box.y1), round(HEIGHT_PX - box.y0)
        left, right = round(box.x0), round(box.x1)
        words[top:bottom, left:right] = face
        words[[top, bottom - 1], left:right] = edge
        words[top:bottom, [left, right - 1]] = edge
        values, value_labels = _value_ticks(panel)
        ys = panel.y_px(values)
        for row in np.round(HEIGHT_PX - ys).astype(int):
            words[row, left + 1 : right - 1 : 3] = grid  # dotted: one pixel on, two off
            words[row, right : right + tick_length] = tick
        for col in np.round(panel.x_px(dates[0])).astype(int):
            words[top + 1 : bottom - 1 : 3, col] = grid
        label_x = box.x1 + _TICK_LENGTH + _TICK_PAD
        texts += [_Text(label, label_x, y, va="center")
                  for y, label in zip(ys, value_labels, strict=True)]
        widest = max((_glyphs(label, TICK_FONT).width for label in value_labels), default=0.0)
        name = labels[panel.name]
        across = _glyphs(name, TICK_FONT).mask.shape[0]  # its width once turned upright
        texts.append(_Text(name, label_x + widest + _LABEL_PAD + across / 2,
                           (box.y0 + box.y1) / 2, vertical=True))
    last = panels[-1]
    bottom = round(HEIGHT_PX - last.box.y0)
    xs = last.x_px(dates[0])
    for col in np.round(xs).astype(int):
        words[bottom : bottom + tick_length, col] = tick
    texts += [_Text(label, x, last.box.y0 - _TICK_LENGTH - _TICK_PAD, ha="center", va="top")
              for x, label in zip(xs, dates[1], strict=True)]
    return texts


def _legend(panel: _Panel, lines: list[_Line]) -> tuple[list[Artist], list[_Text]]:
    """A legend box in the panel's upper left corner, laid out as Matplotlib's own."""
    em = LEGEND_FONT * _PX
    pad, spacing, handle, handle_pad = 0.4 * em, 0.5 * em, 2.0 * em, 0.8 * em
    ascent, descent = _font_extent(LEGEND_FONT)
    row = ascent + descent
    widest = max(_glyphs(line.label, LEGEND_FONT).width for line in lines)
    width = 2 * pad + handle + handle_pad + widest
    height = 2 * pad + len(lines) * row + (len(lines) - 1) * spacing
    left, top = panel.box.x0 + 0.5 * em, panel.box.y1 - 0.5 * em
    frame = FancyBboxPatch(
        (left, top - height), width, height, boxstyle="round,pad=0,rounding_size=0.2",
        mutation_scale=em, facecolor=FACE_COLOR, edgecolor="0.8", linewidth=1.0, alpha=0.85,
        transform=IdentityTransform(), zorder=5.0,
    )
    artists: list[Artist] = [frame]
    segments, colors, widths, styles, texts = [], [], [], [], []
    for i, line in enumerate(lines):
        middle = top - pad - i * (row + spacing) - row / 2
        x0 = left + pad
        if line.bar:
            artists.append(Rectangle((x0, middle - 0.35 * em), handle, 0.7 * em,
                                     facecolor=line.color, linewidth=0, alpha=0.6,
                                     transform=IdentityTransform(), zorder=6.0))
        else:
            segments.append(((x0, middle), (x0 + handle, middle)))
            colors.append(line.color)
            widths.append(line.width)
            styles.append(line.linestyle)
        baseline = middle - (ascent - descent) / 2
        texts.append(_Text(line.label, x0 + handle + handle_pad, baseline, size=LEGEND_FONT,
                           color="#000000"))
    artists.append(LineCollection(segments, colors=colors, linewidths=widths, linestyles=styles,
                                  transform=IdentityTransform(), zorder=6.0))
    return artists, texts


# -- the chart --------------------------------------------------------------------------------


def _data_artists(
    panels: dict[str, _Panel], x: np.ndarray, shown: pd.DataFrame,
    series: dict[str, np.ndarray], volume: np.ndarray,
) -> list[Artist]:
    """Candles, volume, indicator lines and the MACD histogram, each in its panel."""
    artists = _candles(panels["price"], x, shown)
    up = shown["close"].to_numpy(dtype=float) >= shown["open"].to_numpy(dtype=float)
    artists += _bars(panels["volume"], x, volume, _by_bars(len(x), _VOLUME_WIDTHS), up)
    for line in _LINES:
        if line.name not in series:
            continue
        values, panel = series[line.name], panels[line.panel]
        if line.bar:
            artists += _bars(panel, x, values, HIST_WIDTH, values >= 0, alpha=0.6)
        else:
            artists.append(_line(panel, x, values, line))
    if "rsi" in panels:
        guides = [((x[0], level), (x[-1], level)) for level in RSI_LEVELS]
        artists.append(_in_panel(
            panels["rsi"], LineCollection(guides, colors="#888888", linewidths=0.8,
                                          linestyles="--"), 1.5,
        ))
    return artists


def _draw(
    shown: pd.DataFrame, window: pd.DataFrame, drawn: list[_Line], *, title: str
) -> bytes:
    x = np.arange(len(shown), dtype=float)
    margin = 0.6 + 0.052 * len(x)  # room either side, growing with the bars shown
    xlim = (-margin, len(x) - 1 + margin)
    series = {line.name: window[line.name].to_numpy(dtype=float) for line in drawn}
    on = {name: [line for line in drawn if line.panel == name] for name in _PANEL_RATIOS}
    volume = shown["volume"].to_numpy(dtype=float)
    peak = float(np.nanmax(volume)) if np.isfinite(volume).any() else 0.0
    scale, unit = next(((s, u) for s, u in _VOLUME_UNITS if peak >= s), (1.0, ""))
    ylims = {
        "price": _span(shown["low"].to_numpy(), shown["high"].to_numpy(),
                       *(series[line.name] for line in on["price"])),
        "volume": (0.0, (peak / scale or 1.0) * 1.05),
        "rsi": (0.0, 100.0),
        "macd": _span(np.zeros(1), *(series[line.name] for line in on["macd"])),
    }
    panels = {
        name: _Panel(name, box, xlim, ylims[name]) for name, box in _boxes(_panels(drawn)).items()
    }
    artists = _data_artists(panels, x, shown, series, np.nan_to_num(volume / scale))

    # A Figure of its own, not pyplot's: nothing global to register, leak or lock.
    fig = Figure(figsize=FIGSIZE_INCHES, dpi=DPI)
    fig.patch.set_visible(False)  # the background is painted below, not drawn
    renderer = FigureCanvasAgg(fig).get_renderer()
    pixels = np.asarray(renderer.buffer_rgba())
    labels = dict(_PANEL_LABELS, volume=f"Volume ({unit})" if unit else "Volume")
    texts = _furniture(pixels, list(panels.values()), _date_ticks(shown.index), labels)
    for name in ("price", "macd"):
        labelled = [line for line in on[name] if line.label]
        if name in panels and labelled:
            frame, legend_texts = _legend(panels[name], labelled)
            artists += frame
            texts += legend_texts
    texts.append(_Text(title, WIDTH_PX / 2, _TITLE_TOP * HEIGHT_PX, ha="center", va="top",
                       size=TITLE_FONT, color="#000000", bold=True))
    for artist in artists:
        fig.add_artist(artist)
    fig.draw(renderer)  # onto the painted background: FigureCanvasAgg.draw would clear it
    return _png(pixels, texts)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(rgba: np.ndarray, texts: list[_Text]) -> bytes:
    """The canvas with ``texts`` blended in, as an RGBA PNG of unfiltered rows.

    A chart is large flat areas and thin lines: unfiltered rows compress about as well as PNG's
    adaptive filters (which PIL, and so Matplotlib's savefig, always tries) in a fraction of the
    time. The alpha channel stays: dropping it is a strided copy that costs more than the
    quarter more bytes it saves zlib.
    """
    rows = np.zeros((HEIGHT_PX, 1 + WIDTH_PX * 4), dtype=np.uint8)  # byte 0: filter 0, none
    rows[:, 1:] = rgba.reshape(HEIGHT_PX, -1)
    image = rows[:, 1:].reshape(HEIGHT_PX, WIDTH_PX, 4)[..., :3]
    for text in texts:
        _blend(image, text)
    header = struct.pack(">IIBBBBB", WIDTH_PX, HEIGHT_PX, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return b"".join(
        (
            PNG_MAGIC,
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", zlib.compress(rows, PNG_COMPRESS_LEVEL)),
            _png_chunk(b"IEND", b""),
        )
    )


def render_chart(
    bars: pd.DataFrame,
    *,
    symbol: str,
    as_of: dt.date,
    timeframe: Timeframe,
    bars_shown: int = 120,
) -> ChartImage:
    """Render the last ``bars_shown`` bars as a PNG; indicators use the whole history given.

    Indicator series with no value in the shown window (a history shorter than their window)
    are left out and listed in ``omitted_indicators``.
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

    png = _draw(shown, window, drawn, title=f"{symbol}  ·  {timeframe.value}  ·  as of {as_of}")
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
