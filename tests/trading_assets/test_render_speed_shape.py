"""What the fast chart renderer draws: size, panels, text, short histories, a valid PNG."""

from __future__ import annotations

import datetime as dt
import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from trading_assets.charts import render
from trading_assets.charts.render import render_chart
from trading_assets.market_data.synthetic import synthetic_bars
from trading_assets.models import ChartImage, Timeframe

DAY = dt.date(2025, 5, 30)
RSI_RGB = (0x6A, 0x3D, 0x9A)
UP_RGB, DOWN_RGB = (0x26, 0xA6, 0x9A), (0xEF, 0x53, 0x50)


@pytest.fixture(scope="module")
def daily() -> pd.DataFrame:
    return synthetic_bars("BENCH", DAY, 520).bars


def _pixels(chart: ChartImage) -> np.ndarray:
    with Image.open(io.BytesIO(chart.png)) as image:
        image.verify()  # every chunk's CRC and the zlib stream
    with Image.open(io.BytesIO(chart.png)) as image:
        return np.asarray(image.convert("RGB"))


def _band(pixels: np.ndarray, panel: str, drawn: list[str]) -> np.ndarray:
    """The rows and columns of ``panel`` in the image (rows counted from the top)."""
    lines = [line for line in render._LINES if line.name in drawn]
    box = render._boxes(render._panels(lines))[panel]
    height = pixels.shape[0]
    return pixels[
        round(height - box.y1) + 2 : round(height - box.y0) - 2,
        round(box.x0) + 2 : round(box.x1) - 2,
    ]


def _has(region: np.ndarray, rgb: tuple[int, int, int], tolerance: int = 12) -> bool:
    return bool((np.abs(region.astype(int) - rgb).max(axis=-1) <= tolerance).any())


def test_the_200_bar_chart_has_its_size_and_all_four_panels(daily: pd.DataFrame) -> None:
    chart = render_chart(daily, symbol="BENCH", as_of=DAY, timeframe=Timeframe.DAILY,
                         bars_shown=200)
    pixels = _pixels(chart)
    assert pixels.shape == (1000, 1400, 3) and (chart.width, chart.height) == (1400, 1000)
    assert chart.bars_shown == 200 and chart.omitted_indicators == []
    price = _band(pixels, "price", chart.indicators)
    volume = _band(pixels, "volume", chart.indicators)
    assert _has(price, UP_RGB) and _has(price, DOWN_RGB), "candles of both colours"
    assert _has(volume, UP_RGB) and _has(volume, DOWN_RGB), "volume bars of both colours"
    assert _has(_band(pixels, "rsi", chart.indicators), RSI_RGB), "the RSI line in its panel"
    assert not _has(price, RSI_RGB), "the RSI line stays out of the price panel"
    macd = _band(pixels, "macd", chart.indicators)
    assert _has(macd, (0x1F, 0x77, 0xB4)) and _has(macd, (0xFF, 0x7F, 0x0E)), "MACD and signal"


def test_text_is_drawn_title_dates_and_values(daily: pd.DataFrame) -> None:
    pixels = _pixels(render_chart(daily, symbol="BENCH", as_of=DAY, timeframe=Timeframe.DAILY,
                                  bars_shown=200))
    dark = pixels.max(axis=-1) < 90
    assert dark[:45, 400:1000].sum() > 300, "the title across the top"
    assert dark[915:950, 60:1300].sum() > 300, "the dates under the bottom panel"
    assert dark[60:900, 1300:1360].sum() > 300, "the value labels right of the panels"


def test_a_history_shorter_than_every_window_draws_price_and_volume_only(
    daily: pd.DataFrame,
) -> None:
    chart = render_chart(daily.iloc[-12:], symbol="BENCH", as_of=DAY,
                         timeframe=Timeframe.DAILY, bars_shown=200)
    pixels = _pixels(chart)
    assert chart.bars_shown == 12 and chart.indicators == []
    assert (chart.width, chart.height) == (1400, 1000)
    assert not _has(pixels, RSI_RGB), "no RSI panel without an RSI"
    assert _has(_band(pixels, "volume", []), UP_RGB) or _has(_band(pixels, "volume", []),
                                                             DOWN_RGB)


@pytest.mark.parametrize("count", [1, 2, 15, 30])
def test_tiny_histories_render(daily: pd.DataFrame, count: int) -> None:
    # RSI needs 15 bars and the MACD signal 34: each of these lacks some of them.
    chart = render_chart(daily.iloc[-count:], symbol="BENCH", as_of=DAY,
                         timeframe=Timeframe.WEEKLY, bars_shown=104)
    assert _pixels(chart).shape == (1000, 1400, 3)
    assert chart.bars_shown == count
    assert set(chart.indicators) | set(chart.omitted_indicators) == {
        line.name for line in render._LINES
    }


def test_flat_prices_and_zero_volume_render(daily: pd.DataFrame) -> None:
    flat = daily.iloc[-60:].copy()
    flat[["open", "high", "low", "close"]] = 100.0
    flat["volume"] = 0
    chart = render_chart(flat, symbol="FLAT", as_of=DAY, timeframe=Timeframe.DAILY)
    assert _pixels(chart).shape == (1000, 1400, 3)
    assert chart.last_values["rsi_14"] == 50.0


def test_the_same_bars_give_the_same_bytes_in_any_order_and_thread(daily: pd.DataFrame) -> None:
    def chart(end: int) -> bytes:
        return render_chart(daily.iloc[:end], symbol="BENCH", as_of=DAY,
                            timeframe=Timeframe.DAILY, bars_shown=200).png

    first = chart(400)
    chart(300)  # another chart in between: its cached text must not bleed into the next one
    assert chart(400) == first
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(chart, [400, 300, 400, 300])) == [first, chart(300), first,
                                                               chart(300)]
