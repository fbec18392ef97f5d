"""A signal's outcome read after the fact: forward returns, excursions and its simulated bracket.

Pure functions over the bars after the signal's day, never past the horizon's last session. The
bracket reads each bar with the paper simulator's rules (``trading_assets.execution.fills``):

- the entry is a DAY limit order for the next session only: it fills at the open when the open is
  already through the limit, at the limit when the session trades through it, otherwise never (a
  touch may not fill);
- on the entry's session only the stop may trigger, at the stop or at the entry's price when the
  entry's open was already past it;
- on later sessions a bar that reaches both the stop and the target counts the stop (a daily bar
  does not say which came first); a level the open gapped past fills at the open;
- neither by the ``exit_after_sessions``-th session (the entry's session is the first): the trade
  exits at that session's close as a market order;
- the entry and the take profit are limits, so their slippage stops at the limit; the stop and the
  time exit are market fills and slip in full; commission is charged per share on both fills.

``score_history`` scores many signals of one symbol in one pass over the bars as numpy arrays (one
calendar lookup, one check of the sessions); ``score_signal`` is ``score_history`` of one signal, so
both follow the same rules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from trading_assets.calendar import calendar_bounds, sessions_between
from trading_assets.evaluation.models import (
    EXCURSION_HORIZON,
    HORIZONS,
    SignalOutcome,
    TradeOutcome,
)
from trading_assets.execution.costs import CostModel
from trading_assets.execution.fills import Bar, ExitFill, entry_fill, exit_fill, exit_side
from trading_assets.models import Action, MarketData, OrderSide, TradingSignal


class OutcomeDataError(ValueError):
    """The bars cannot give an honest outcome (a session is missing): the source must be fixed."""


def horizon_sessions(exit_after_sessions: int) -> int:
    """How many sessions after the signal's day an outcome needs."""
    if exit_after_sessions < 1:
        raise ValueError(
            f"exit_after_sessions must be at least 1 (the entry's session), got "
            f"{exit_after_sessions}"
        )
    return max(max(HORIZONS), EXCURSION_HORIZON, exit_after_sessions)


def _window_days(count: int) -> int:
    """Calendar days after a day that hold its next ``count`` sessions.

    Two calendar days per session plus ten covers weekends and the longest closures.
    """
    return 2 * count + 10


@dataclass(frozen=True)
class _Horizons:
    """Where the horizon of each of some days lies on one grid of XNYS sessions."""

    grid: pd.DatetimeIndex  # every session after the earliest day up to the latest day's window
    days: np.ndarray  # the days, datetime64[ns] (one before the calendar is clipped to its start)
    first: np.ndarray  # grid position of the first session after each day
    last: np.ndarray  # grid position of the horizon's last session (only meaningful if found)
    ends: np.ndarray  # that session, datetime64[ns]
    found: np.ndarray  # the calendar has the horizon's last session within the day's window


def _horizons(days: Sequence[dt.date], count: int) -> _Horizons:
    """The ``count``-th session after each of ``days``, from one calendar lookup."""
    earliest, _ = calendar_bounds()
    # sessions_between clips to the calendar, which would silently count from its first session:
    # a day before it is never found (see _horizon_error), only clipped to keep the arithmetic.
    clipped = [max(d, earliest) for d in days]
    grid = sessions_between(
        min(clipped) + dt.timedelta(days=1),
        max(clipped) + dt.timedelta(days=_window_days(count)),
    )
    sessions = grid.values.astype("datetime64[ns]")
    at = np.array(clipped, dtype="datetime64[ns]")
    first = np.searchsorted(sessions, at, side="right")
    last = first + (count - 1)
    found = (last < len(sessions)) & np.array([d >= earliest for d in days])
    last = np.minimum(last, max(len(sessions) - 1, 0))
    ends = sessions[last] if len(sessions) else at.copy()
    found &= ends <= at + np.timedelta64(_window_days(count), "D")
    return _Horizons(grid=grid, days=at, first=first, last=last, ends=ends, found=found)


def _horizon_error(as_of: dt.date, count: int) -> ValueError:
    first, last = calendar_bounds()
    if as_of < first:
        return ValueError(
            f"{as_of} is before the XNYS calendar's first session {first}: cannot count the "
            f"{count} sessions after it"
        )
    return ValueError(
        f"the XNYS calendar ends on {last}, before the {count}th session after {as_of}: "
        "upgrade exchange-calendars"
    )


def horizon_ends(days: Sequence[dt.date], exit_after_sessions: int) -> list[dt.date]:
    """``horizon_end`` of each of ``days``, from one calendar lookup."""
    if not days:
        return []
    count = horizon_sessions(exit_after_sessions)
    horizons = _horizons(days, count)
    missing = np.flatnonzero(~horizons.found)
    if len(missing):
        raise _horizon_error(days[int(missing[0])], count)
    return [ts.date() for ts in horizons.grid[horizons.last]]


def horizon_end(as_of: dt.date, exit_after_sessions: int) -> dt.date:
    """The XNYS session ``horizon_sessions(exit_after_sessions)`` sessions after ``as_of``."""
    return horizon_ends([as_of], exit_after_sessions)[0]


def _excursion(close, high, low, direction: int):  # type: ignore[no-untyped-def]
    """(favourable, adverse) excursion of a window's high and low from ``close``: on floats, or
    elementwise on arrays."""
    if direction == 1:
        return high / close - 1, low / close - 1
    return 1 - low / close, 1 - high / close


def forward_returns(
    close: float, bars_after: pd.DataFrame, horizons: tuple[int, ...] = HORIZONS
) -> dict[int, float]:
    """Close-to-close return ``h`` sessions ahead, for each horizon the bars reach."""
    closes = bars_after["close"]
    return {h: float(closes.iloc[h - 1]) / close - 1 for h in horizons if len(closes) >= h}


def excursions(
    close: float, bars_after: pd.DataFrame, direction: int, sessions: int = EXCURSION_HORIZON
) -> tuple[float, float]:
    """(max favourable, max adverse) excursion over the first ``sessions`` bars.

    ``direction`` is +1 for a long reading (BUY, and HOLD), -1 for a short one (SELL). The adverse
    excursion is negative when the price moved against the direction at any point.
    """
    if direction not in (1, -1):
        raise ValueError(f"direction must be +1 (long) or -1 (short), got {direction}")
    if len(bars_after) < sessions:
        raise ValueError(
            f"excursions over {sessions} sessions need {sessions} bars, got {len(bars_after)}"
        )
    window = bars_after.iloc[:sessions]
    return _excursion(close, float(window["high"].max()), float(window["low"].min()), direction)


_OHLC = ("open", "high", "low", "close")


@dataclass(frozen=True)
class _Rows:
    """Bars as plain Python values read by position: what the bracket reads, one bar at a time."""

    days: list[dt.date]
    bars: list[Bar]
    close: list[float]

    @classmethod
    def of(cls, frame: pd.DataFrame) -> _Rows:
        columns = [frame[c].to_numpy(dtype=float).tolist() for c in _OHLC]
        bars = [Bar(open=o, high=h, low=lo, close=c) for o, h, lo, c in zip(*columns, strict=True)]
        return cls(frame.index.date.tolist(), bars, columns[3])


def _entry_note(side: OrderSide, limit: float, day: dt.date, bar: Bar, at_open: bool | None) -> str:
    if at_open is None:
        if side is OrderSide.BUY:
            how = "only touched" if bar.low == limit else "stayed above"
            return f"not filled: on {day} the low {bar.low:.2f} {how} the BUY limit {limit:.2f}"
        how = "only touched" if bar.high == limit else "stayed below"
        return f"not filled: on {day} the high {bar.high:.2f} {how} the SELL limit {limit:.2f}"
    if at_open:
        return (
            f"the open {bar.open:.2f} on {day} was through the {side.value} limit {limit:.2f}: "
            "filled at the open"
        )
    through = f"the low {bar.low:.2f}" if side is OrderSide.BUY else f"the high {bar.high:.2f}"
    return f"filled at the limit {limit:.2f} on {day} ({through} traded through it)"


def _exit_note(
    side: OrderSide, fill: ExitFill, stop: float, target: float, day: dt.date, bar: Bar, *,
    entry_bar: bool,
) -> str:
    if entry_bar:
        if fill.at_open:
            return (
                f"on the entry session {day} the open {bar.open:.2f} was already past the stop "
                f"{stop:.2f}: stopped out at once at the entry's price"
            )
        reached = f"the low {bar.low:.2f}" if side is OrderSide.BUY else f"the high {bar.high:.2f}"
        return (
            f"on the entry session {day} {reached} reached the stop {stop:.2f}: stopped out at "
            "the stop (on the entry's bar only the stop counts)"
        )
    if fill.spanned_both:
        note = (
            f"the {day} bar reached both the stop {stop:.2f} and the target {target:.2f}: counted "
            "the stop (a daily bar does not say which came first)"
        )
        if fill.at_open:
            note += f"; the open {bar.open:.2f} gapped through the stop: filled at the open"
        return note
    level, name = (stop, "stop") if fill.leg == "stop_loss" else (target, "target")
    if fill.at_open:
        return (
            f"the {day} open {bar.open:.2f} gapped through the {name} {level:.2f}: filled at the "
            "open"
        )
    what = "stopped out" if fill.leg == "stop_loss" else "took profit"
    return f"{what} on {day} at the {name} {level:.2f}"


def simulate_bracket(
    side: OrderSide,
    limit: float,
    stop: float,
    target: float,
    bars_after: pd.DataFrame,
    costs: CostModel,
    exit_after_sessions: int,
) -> TradeOutcome:
    """The bracket's fills on ``bars_after`` (the sessions after the signal's day), as the module
    docstring describes; bars past the time exit are not read."""
    rows = _Rows.of(bars_after.iloc[: max(exit_after_sessions, 0)])
    return _bracket(side, limit, stop, target, rows, 0, costs, exit_after_sessions)


def _bracket(
    side: OrderSide,
    limit: float,
    stop: float,
    target: float,
    rows: _Rows,
    start: int,
    costs: CostModel,
    exit_after_sessions: int,
) -> TradeOutcome:
    """``simulate_bracket`` on ``rows`` from ``start``, the first session after the signal's day."""
    if exit_after_sessions < 1:
        raise ValueError(f"exit_after_sessions must be at least 1, got {exit_after_sessions}")
    ordered = stop < limit < target if side is OrderSide.BUY else target < limit < stop
    if not ordered:
        raise ValueError(
            f"a {side.value} bracket needs the stop and the target on either side of the limit, "
            f"got limit {limit}, stop {stop}, target {target}"
        )
    available = len(rows.days) - start
    if available < exit_after_sessions:
        raise ValueError(
            f"the bracket's time exit after {exit_after_sessions} sessions needs that many bars "
            f"after the signal's day, got {available}: simulate once the horizon closed"
        )
    days = rows.days
    levels = dict(side=side, limit_price=limit, stop_loss=stop, take_profit=target)

    first = rows.bars[start]
    entry = entry_fill(side, limit, first)
    if entry is None:
        return TradeOutcome(
            **levels, filled=False, entry_note=_entry_note(side, limit, days[start], first, None)
        )
    raw_entry = entry.raw_price
    entry_price = costs.fill_price(side, raw_entry, "limit", limit)

    for i in range(exit_after_sessions):
        if i == 0:
            bar = first
            fill = exit_fill(side, stop, target, bar, entry_price=raw_entry)
        else:
            bar = rows.bars[start + i]
            fill = exit_fill(side, stop, target, bar)
        if fill is not None:
            raw_exit, kind, reason = fill.raw_price, fill.kind, fill.leg
            exit_note = _exit_note(
                side, fill, stop, target, days[start + i], bar, entry_bar=i == 0
            )
            spanned, gapped = fill.spanned_both, fill.at_open
            break
    else:
        i = exit_after_sessions - 1
        raw_exit, kind, reason = bar.close, "market", "time_exit"
        exit_note = (
            f"neither the stop {stop:.2f} nor the target {target:.2f} by session "
            f"{exit_after_sessions} ({days[start + i]}): exited at the close {bar.close:.2f}"
        )
        spanned = gapped = False

    exit_price = costs.fill_price(
        exit_side(side), raw_exit, kind, limit=target if reason == "take_profit" else None
    )
    direction = 1 if side is OrderSide.BUY else -1
    # Per share: the per-order commission minimum depends on a quantity the outcome does not
    # have, so the scorecard's equity curve charges it where the quantity is known.
    commission = 2 * costs.commission_per_share
    net_profit = direction * (exit_price - entry_price) - commission
    held = slice(start, start + i + 1)
    return TradeOutcome(
        **levels,
        filled=True,
        entry_note=_entry_note(side, limit, days[start], first, entry.at_open),
        entry_date=days[start],
        entry_price=entry_price,
        exit_date=days[start + i],
        exit_price=exit_price,
        exit_reason=reason,
        exit_note=exit_note,
        spanned_stop_and_target=spanned,
        gapped_through=gapped,
        sessions_held=i + 1,
        gross_return=direction * (raw_exit - raw_entry) / raw_entry,
        net_return=net_profit / entry_price,
        r_multiple=net_profit / abs(limit - stop),
        commission_per_share=commission,
        slippage_per_share=abs(entry_price - raw_entry) + abs(exit_price - raw_exit),
        path_dates=days[held],
        path_closes=rows.close[held],
    )


def _check_symbol(signal: TradingSignal, market: MarketData) -> None:
    if market.symbol != signal.symbol:
        raise ValueError(
            f"the market data is for {market.symbol}, the signal for {signal.symbol}"
        )


def _session_error(
    market: MarketData, as_of: dt.date, end: dt.date, sessions: pd.DatetimeIndex,
    after: pd.DatetimeIndex,
) -> OutcomeDataError | None:
    """Why the bars ``after`` the signal's day are not exactly the horizon's ``sessions``."""
    missing = [d.date().isoformat() for d in sessions.difference(after)]
    if missing:
        return OutcomeDataError(
            f"{market.symbol} has no bar on the session(s) {', '.join(missing)} between {as_of} "
            f"and {end} ({market.source}: {market.source_detail}): fix the source; an outcome "
            "counted over a gap would shift every horizon"
        )
    extra = [d.date().isoformat() for d in after.difference(sessions)]
    if extra:
        return OutcomeDataError(
            f"{market.symbol} has bars on {', '.join(extra)}, not XNYS sessions, between {as_of} "
            f"and {end} ({market.source}: {market.source_detail}): fix the source"
        )
    return None


_SIDES = {Action.BUY: OrderSide.BUY, Action.SELL: OrderSide.SELL}


def score_signal(
    signal: TradingSignal,
    *,
    prompt_version: str,
    market: MarketData,
    costs: CostModel,
    exit_after_sessions: int,
    latest_closed: dt.date,
) -> SignalOutcome:
    """What the price did after ``signal``, from ``market``'s bars up to the horizon's end only.

    Not scorable (no numbers) until the horizon's last session has closed and the source has its
    bar; raises ``OutcomeDataError`` when a session in between has no bar.
    """
    _check_symbol(signal, market)
    (outcome,) = score_history(
        [(signal, prompt_version)], market=market, costs=costs,
        exit_after_sessions=exit_after_sessions, latest_closed=latest_closed,
    )
    return outcome


def score_history(
    signals: Sequence[tuple[TradingSignal, str]],
    *,
    market: MarketData,
    costs: CostModel,
    exit_after_sessions: int,
    latest_closed: dt.date,
) -> list[SignalOutcome]:
    """``score_signal`` of every (signal, prompt version) of ``market``'s symbol, in one pass.

    Each outcome equals scoring its signal alone with the bars cut at its horizon's end: nothing
    after a signal's horizon is read for it, whatever else ``market`` holds. The first signal (in
    order) that cannot be scored raises as ``score_signal`` would.
    """
    count = horizon_sessions(exit_after_sessions)
    if not signals:
        return []
    horizons = _horizons([signal.as_of for signal, _ in signals], count)
    bars = market.bars
    stamps = bars.index.values.astype("datetime64[ns]")
    closes, highs, lows = (bars[c].to_numpy(dtype=float) for c in ("close", "high", "low"))
    sessions = horizons.grid.values.astype("datetime64[ns]")

    day = np.searchsorted(stamps, horizons.days)
    has_day = stamps[np.minimum(day, len(stamps) - 1)] == horizons.days
    # The last bar up to each horizon's end, and how many of the horizon's sessions have a bar:
    # the bars after the day are exactly the horizon's sessions when both counts are ``count``.
    through = np.searchsorted(stamps, horizons.ends, side="right") - 1
    with_bar = np.concatenate(([0], np.cumsum(np.isin(sessions, stamps))))
    covered = with_bar[np.minimum(horizons.last + 1, len(sessions))] - with_bar[
        np.minimum(horizons.first, len(sessions))
    ]
    complete = (covered == count) & (through - day == count)
    closed = horizons.ends <= np.datetime64(latest_closed, "ns")
    reached = stamps[through] == horizons.ends
    scorable = horizons.found & has_day & closed & reached & complete

    at = day[scorable]
    close = closes[at]
    returns = {h: (closes[at + h] / close - 1).tolist() for h in HORIZONS}
    window = at[:, None] + np.arange(1, EXCURSION_HORIZON + 1)
    # fmax/fmin skip a NaN as pandas' max/min do.
    high, low = np.fmax.reduce(highs[window], axis=1), np.fmin.reduce(lows[window], axis=1)
    long_ = [e.tolist() for e in _excursion(close, high, low, 1)]
    short = [e.tolist() for e in _excursion(close, high, low, -1)]
    rank = np.cumsum(scorable) - 1
    # The rows the scorable signals read, as plain values: none past the last horizon's end.
    start = int(at.min()) + 1 if len(at) else 0
    rows = _Rows.of(bars.iloc[start : int(through[scorable].max()) + 1 if len(at) else 0])
    end_days = horizons.grid.date

    outcomes: list[SignalOutcome] = []
    for k, (signal, prompt_version) in enumerate(signals):
        _check_symbol(signal, market)
        as_of = signal.as_of
        if not horizons.found[k]:
            raise _horizon_error(as_of, count)
        end = end_days[horizons.last[k]]
        if not has_day[k]:
            raise OutcomeDataError(
                f"{market.symbol} has no bar on the signal's day {as_of} ({market.source}: "
                f"{market.source_detail}): fix the source, the outcome needs that day's close"
            )
        base = dict(
            symbol=signal.symbol,
            as_of=as_of,
            horizon_end=end,
            source=market.source,
            source_detail=market.source_detail,
            action=signal.action,
            confidence_score=signal.confidence_score,
            confidence_level=signal.confidence_level,
            actionable=signal.actionable,
            position_size_pct=signal.position_size_pct,
            provider=signal.provider,
            model_name=signal.model_name,
            prompt_version=prompt_version,
            close=float(closes[day[k]]),
            exit_after_sessions=exit_after_sessions,
            costs=costs,
        )
        if not closed[k]:
            outcomes.append(SignalOutcome(
                **base,
                scorable=False,
                status=(
                    f"not yet scorable: needs bars through {end} ({count} sessions after "
                    f"{as_of}); the latest closed session is {latest_closed}"
                ),
                bars_through=as_of,
            ))
            continue
        if not reached[k]:
            last = bars.index[through[k]].date()
            outcomes.append(SignalOutcome(
                **base,
                scorable=False,
                status=(
                    f"not yet scorable: the source has bars through {last}; the horizon needs "
                    f"{end}"
                ),
                bars_through=last,
            ))
            continue
        if not complete[k]:
            error = _session_error(
                market, as_of, end, horizons.grid[horizons.first[k] : horizons.last[k] + 1],
                bars.index[day[k] + 1 : through[k] + 1],
            )
            assert error is not None, f"the session counts disagree for {as_of} but nothing differs"
            raise error

        r, row = rank[k], day[k] + 1 - start
        direction = -1 if signal.action is Action.SELL else 1  # HOLD is read as long
        favourable, adverse = short if direction == -1 else long_
        trade = None
        if signal.actionable and signal.action in (Action.BUY, Action.SELL):
            # The model checks that a BUY/SELL has all three prices.
            assert signal.entry_price and signal.stop_loss and signal.take_profit
            trade = _bracket(
                _SIDES[signal.action], signal.entry_price, signal.stop_loss,
                signal.take_profit, rows, row, costs, exit_after_sessions,
            )
        outcomes.append(SignalOutcome(
            **base,
            scorable=True,
            status="scored",
            bars_through=end,
            forward_returns={h: returns[h][r] for h in HORIZONS},
            max_favourable_excursion=favourable[r],
            max_adverse_excursion=adverse[r],
            forward_dates=rows.days[row : row + count],
            forward_closes=rows.close[row : row + count],
            trade=trade,
        ))
    return outcomes
