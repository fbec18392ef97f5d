"""Block bootstrap over trading days and the summary statistics of an account curve (numpy only).

Forward returns over ``h`` sessions overlap from one day to the next and symbols move together,
so an iid bootstrap of outcomes would understate every interval. Here whole trading days are
resampled (every outcome of a drawn day comes along) in blocks of ``h`` consecutive days; each
statistic is a ratio of per-day sums, so one count matrix serves every statistic of a sample.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from trading_assets.evaluation.models import CurveStats, Interval

CONFIDENCE = 95.0
TRADING_DAYS_PER_YEAR = 252
# Fewer blocks than this in the sample: the resamples are nearly rotations of one series and
# their spread says nothing (with one block every resample holds every day once: zero width).
MIN_BLOCKS = 3
_TAILS = ((100 - CONFIDENCE) / 2, 100 - (100 - CONFIDENCE) / 2)


def block_counts(days: int, block: int, resamples: int, seed: int) -> np.ndarray:
    """How often each of ``days`` consecutive days is drawn, one row per resample.

    A circular block bootstrap: blocks of ``block`` consecutive days start at uniform positions
    and wrap around the end, so every day is equally likely; blocks are drawn until ``days``
    days are, and the last block is cut. ``block`` 1 is the iid bootstrap of days.
    """
    if days < 1 or resamples < 1:
        return np.zeros((max(resamples, 0), max(days, 0)))
    block = max(1, min(block, days))
    blocks = -(-days // block)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, days, size=(resamples, blocks))
    drawn = (starts[:, :, None] + np.arange(block)).reshape(resamples, blocks * block)[:, :days]
    drawn %= days
    flat = (np.arange(resamples)[:, None] * days + drawn).ravel()
    return np.bincount(flat, minlength=resamples * days).reshape(resamples, days).astype(float)


@dataclass(frozen=True)
class Mean:
    """A statistic for ``DayBootstrap.intervals``: the mean of ``values[mask]``, minus the mean
    of ``values[reference]`` when there is a reference. Masks exclude NaN values already."""

    values: np.ndarray
    mask: np.ndarray
    reference: np.ndarray | None = None

    @classmethod
    def of(cls, values: np.ndarray, mask: np.ndarray | None = None) -> Mean:
        values = np.asarray(values, dtype=float)
        finite = np.isfinite(values)
        return cls(values, finite if mask is None else finite & mask)

    @classmethod
    def difference(
        cls, values: np.ndarray, mask: np.ndarray, reference: np.ndarray | None = None
    ) -> Mean:
        """mean(values[mask]) - mean(values[reference]); ``reference`` None: all values."""
        plain = cls.of(values, mask)
        finite = np.isfinite(plain.values)
        return cls(plain.values, plain.mask, finite if reference is None else finite & reference)


class DayBootstrap:
    """Intervals of means over values that belong to trading days, by a block bootstrap of days.

    ``day_index`` gives each value's day as 0..days-1 in calendar order (consecutive indices are
    consecutive trading days of the sample). The resamples are drawn once, so every statistic of
    one sample sees the same draws, and the seed makes them repeat exactly. An interval needs at
    least two values on two days, in a sample of at least ``MIN_BLOCKS`` blocks of days; short
    of that only the estimate is given.
    """

    def __init__(
        self, day_index: np.ndarray, *, block: int, resamples: int, seed: int,
        cache: dict[tuple[int, int, int, int], np.ndarray] | None = None,
    ) -> None:
        self.day_index = np.asarray(day_index, dtype=np.int64)
        self.days = int(self.day_index.max()) + 1 if self.day_index.size else 0
        self.block = block
        # Samples with as many days share their draws (the counts depend on nothing else): a
        # scorecard passes one cache to all its groups, and drops it when done.
        key = (self.days, block, resamples, seed)
        if cache is None:
            self.counts = block_counts(*key)
        else:
            if key not in cache:
                cache[key] = block_counts(*key)
            self.counts = cache[key]

    def mean(self, values: np.ndarray, mask: np.ndarray | None = None) -> Interval:
        """The mean of ``values[mask]`` (NaN left out) and its percentile interval."""
        return self.intervals([Mean.of(values, mask)])[0]

    def mean_difference(
        self, values: np.ndarray, mask: np.ndarray, reference: np.ndarray | None = None
    ) -> Interval:
        """mean(values[mask]) - mean(values[reference]), both means inside each resample.

        ``reference`` None: all (finite) values. ``n`` is the size of the ``mask`` sample.
        """
        return self.intervals([Mean.difference(values, mask, reference)])[0]

    def intervals(self, stats: Sequence[Mean]) -> list[Interval]:
        """Every statistic's estimate and 95 % percentile interval.

        The resampled per-day sums of all statistics come from one matrix product (the count
        matrix is read once, not once a statistic). A resample that drew no day with a value of
        the statistic (a rare action in a short sample) is left out of its percentiles.
        """
        columns: list[np.ndarray] = []  # per-day sum and count of each mask in turn
        days_with_values: list[int] = []
        for stat in stats:
            for mask in (stat.mask, stat.reference):
                if mask is None:
                    continue
                idx = self.day_index[mask]
                columns.append(np.bincount(idx, weights=stat.values[mask], minlength=self.days))
                columns.append(np.bincount(idx, minlength=self.days).astype(float))
                if mask is stat.mask:
                    days_with_values.append(int(np.count_nonzero(columns[-1])))
        sums = self.counts @ np.column_stack(columns) if columns and self.days else None

        out: list[Interval] = []
        col = 0
        for stat, days in zip(stats, days_with_values, strict=True):
            first, col = col, col + (2 if stat.reference is None else 4)
            n = int(stat.mask.sum())
            if n == 0:
                out.append(Interval(estimate=None, n=0))
                continue
            estimate = float(stat.values[stat.mask].mean())
            if stat.reference is not None:
                estimate -= float(stat.values[stat.reference].mean())
            if sums is None or not self._resamplable(n, days):
                out.append(Interval(estimate=estimate, n=n))
                continue
            with np.errstate(invalid="ignore", divide="ignore"):
                draws = sums[:, first] / sums[:, first + 1]
                if stat.reference is not None:
                    draws = draws - sums[:, first + 2] / sums[:, first + 3]
            out.append(_interval(estimate, draws, n))
        return out

    def _resamplable(self, values: int, days_with_values: int) -> bool:
        # Fewer than two values, all of them on one day, or too few blocks of days: resampling
        # cannot show the spread, and a zero-width interval would read as certainty.
        return values >= 2 and days_with_values >= 2 and self.days >= MIN_BLOCKS * self.block


def _interval(estimate: float, draws: np.ndarray, n: int) -> Interval:
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return Interval(estimate=estimate, n=n)
    low, high = np.percentile(draws, _TAILS)
    return Interval(estimate=estimate, low=float(low), high=float(high), n=n)


def bootstrap_mean(
    values: Sequence[float] | np.ndarray,
    day_index: Sequence[int] | np.ndarray,
    *,
    block: int,
    resamples: int,
    seed: int,
) -> Interval:
    """The mean of ``values`` with a block bootstrap interval over their days (see DayBootstrap)."""
    return DayBootstrap(
        np.asarray(day_index), block=block, resamples=resamples, seed=seed
    ).mean(np.asarray(values, dtype=float))


def curve_stats(values: Sequence[float] | np.ndarray) -> CurveStats:
    """Total return, annualised Sharpe ratio and maximum drawdown of a daily account curve.

    Sharpe: mean / standard deviation (ddof 1) of the daily returns times sqrt(252), no risk-free
    rate; None with fewer than two returns or none that differ. Drawdown: the most negative
    value / running maximum - 1 (0 when the curve never fell).
    """
    curve = np.asarray(values, dtype=float)
    if curve.size == 0 or curve[0] == 0:
        return CurveStats(total_return=0.0, annualised_sharpe=None, max_drawdown=0.0)
    total = float(curve[-1] / curve[0] - 1)
    returns = curve[1:] / curve[:-1] - 1
    sharpe = None
    if returns.size >= 2:
        std = float(returns.std(ddof=1))
        if std > 1e-15:
            sharpe = float(returns.mean() / std * math.sqrt(TRADING_DAYS_PER_YEAR))
    drawdown = float(np.min(curve / np.maximum.accumulate(curve) - 1))
    return CurveStats(
        total_return=total, annualised_sharpe=sharpe, max_drawdown=min(drawdown, 0.0) or 0.0
    )
