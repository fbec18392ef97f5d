"""The scorecard's PNG plots decode, have the stated size and show something."""

from __future__ import annotations

import io
import subprocess
import sys
import time

import numpy as np
from PIL import Image

from tests.evaluation.test_scorecard import DAYS, card_of, outcome, trade, two_model_outcomes
from trading_assets.evaluation.models import PlotImage, Scorecard
from trading_assets.evaluation.plots import calibration_png, equity_curve_png
from trading_assets.models import Action, OrderSide


def decoded(plot: PlotImage) -> np.ndarray:
    image = Image.open(io.BytesIO(plot.png))
    image.load()
    assert image.format == "PNG"
    assert image.size == (plot.width, plot.height) == (1000, 600)
    return np.asarray(image.convert("L"), dtype=float)


def assert_not_blank(pixels: np.ndarray) -> None:
    # A drawn plot has dark ink (text, lines) on a light background, and plenty of it.
    assert pixels.std() > 5
    assert (pixels < 128).mean() > 0.005


def traded_card() -> Scorecard:
    outcomes = two_model_outcomes(days=120)
    for t in range(0, 100, 7):
        path = [(DAYS[t + k], 100.0 + k * (1 if t % 2 else -1)) for k in range(1, 6)]
        outcomes.append(outcome(
            "AAA", DAYS[t], Action.BUY, 0.01, score=30 + t % 70, model="oracle",
            trade=trade(OrderSide.BUY, path=path, net=0.01),
        ))
    return card_of(outcomes)


def test_equity_curve_png() -> None:
    card = traded_card()
    assert card.equity_curve is not None
    start = time.perf_counter()
    plot = equity_curve_png(card.equity_curve)
    elapsed = time.perf_counter() - start
    assert plot.name == "equity_curve"
    assert plot.as_of == card.equity_curve.dates[-1]
    assert "buy and hold" in plot.title
    assert_not_blank(decoded(plot))
    assert elapsed < 1.5, elapsed  # ~0.1-0.2 s warm; generous for a loaded machine


def test_calibration_png() -> None:
    card = traded_card()
    group = next(g for g in card.groups if g.key == "oracle")
    plot = calibration_png(group)
    assert plot.name == "calibration"
    assert "5 sessions" in plot.title and "oracle" in plot.title
    assert_not_blank(decoded(plot))
    start = time.perf_counter()
    calibration_png(card.overall, horizon=20)
    assert time.perf_counter() - start < 1.5


def test_calibration_png_of_nothing_still_draws() -> None:
    card = card_of([])
    pixels = decoded(calibration_png(card.overall))
    assert_not_blank(pixels)


def test_plots_module_does_not_import_matplotlib() -> None:
    # Loading the code location must stay fast: matplotlib is imported when a plot is drawn.
    code = (
        "import sys, trading_assets.evaluation.plots, trading_assets.evaluation.scorecard, "
        "trading_assets.evaluation.report; print('matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
