import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trading_assets.calendar import is_trading_day, sessions_between
from trading_assets.evaluation.models import HORIZONS, SignalOutcome, TradeOutcome
from trading_assets.evaluation.outcome import (
    OutcomeDataError,
    excursions,
    forward_returns,
    horizon_end,
    horizon_sessions,
    score_history,
    score_signal,
    simulate_bracket,
)
from trading_assets.execution.costs import CostModel
from trading_assets.market_data.synthetic import synthetic_bars
from trading_assets.models import MarketData, OrderSide, TradingSignal

DAY = dt.date(2025, 6, 2)  # a Monday; 20 sessions later is 2025-07-01 (Juneteenth skipped)
END = dt.date(2025, 7, 1)
REAL = Path(__file__).resolve().parents[1] / "data" / "real"
NO_COSTS = CostModel(commission_per_share=0, commission_min=0, slippage_bps=0)
COSTS = CostModel()  # 0.005 USD/share, 5 bp
SLIP = 5 / 10_000


def _after(rows: list[tuple[float, float, float, float]], day: dt.date = DAY) -> pd.DataFrame:
    """Bars (open, high, low, close) on the sessions after ``day``."""
    dates = sessions_between(day + dt.timedelta(days=1), day + dt.timedelta(days=120))
    frame = pd.DataFrame(rows, columns=["open", "high", "low", "close"], index=dates[: len(rows)])
    frame["volume"] = 1_000
    return frame


QUIET = (102.0, 103.0, 101.0, 102.0)  # never reaches a 95 stop or a 110 target


def _buy(
    rows: list[tuple[float, float, float, float]], costs: CostModel = NO_COSTS,
    sessions: int | None = None,
) -> TradeOutcome:
    sessions = sessions or len(rows)
    return simulate_bracket(OrderSide.BUY, 100, 95, 110, _after(rows), costs, sessions)


# --- horizon ---------------------------------------------------------------------------------


def test_horizon_counts_xnys_sessions_after_the_signal_day() -> None:
    assert horizon_sessions(5) == 20 and horizon_sessions(30) == 30
    assert horizon_end(DAY, 20) == END
    assert horizon_end(dt.date(2025, 6, 30), 20) == dt.date(2025, 7, 29)  # July 4th skipped
    assert horizon_end(DAY, 25) == dt.date(2025, 7, 9)
    with pytest.raises(ValueError, match="at least 1"):
        horizon_sessions(0)


def test_forward_returns_and_excursions_long_and_short() -> None:
    after = _after([(101, 104, 99, 102), (102, 108, 97, 106), (106, 107, 92, 95)])
    assert forward_returns(100, after, (1, 3, 5)) == {1: 102 / 100 - 1, 3: 95 / 100 - 1}
    assert excursions(100, after, 1, sessions=2) == (108 / 100 - 1, 97 / 100 - 1)
    assert excursions(100, after, -1, sessions=3) == (1 - 92 / 100, 1 - 108 / 100)
    with pytest.raises(ValueError, match="need 5 bars"):
        excursions(100, after, 1, sessions=5)


# --- the limit entry -------------------------------------------------------------------------


def test_open_through_the_limit_fills_at_the_open() -> None:
    trade = _buy([(98.5, 103, 98, 102), QUIET], costs=COSTS)
    assert trade.filled and trade.entry_date == dt.date(2025, 6, 3)
    assert trade.entry_price == pytest.approx(98.5 * (1 + SLIP))
    assert trade.entry_note == (
        "the open 98.50 on 2025-06-03 was through the BUY limit 100.00: filled at the open"
    )


def test_a_touch_of_the_limit_does_not_fill() -> None:
    trade = _buy([(101, 103, 100, 102), (99, 100, 90, 91)])
    assert not trade.filled and trade.entry_price is None and trade.exit_reason is None
    assert trade.entry_note == (
        "not filled: on 2025-06-03 the low 100.00 only touched the BUY limit 100.00"
    )


def test_trading_through_the_limit_fills_at_the_limit_with_slippage_capped() -> None:
    trade = _buy([(101, 103, 99.9, 102), QUIET], costs=COSTS)
    assert trade.filled and trade.entry_price == 100.0  # 100 * 1.0005 capped at the limit
    assert trade.entry_note.startswith("filled at the limit 100.00 on 2025-06-03")


def test_an_unfilled_limit_says_which_session_and_why() -> None:
    trade = _buy([(102, 104, 101.2, 103), (99, 100, 80, 81)])
    assert not trade.filled and trade.sessions_held == 0 and trade.net_return is None
    assert trade.entry_note == (
        "not filled: on 2025-06-03 the low 101.20 stayed above the BUY limit 100.00"
    )
    sell = simulate_bracket(OrderSide.SELL, 100, 105, 90, _after([(98, 99, 97, 98)]), NO_COSTS, 1)
    assert sell.entry_note == (
        "not filled: on 2025-06-03 the high 99.00 stayed below the SELL limit 100.00"
    )


# --- the exits -------------------------------------------------------------------------------


def test_a_bar_spanning_stop_and_target_counts_the_stop() -> None:
    trade = _buy([(99, 101, 98, 100), QUIET, QUIET, (100, 111, 94, 105), QUIET])
    assert trade.exit_reason == "stop_loss" and trade.spanned_stop_and_target
    assert trade.exit_date == dt.date(2025, 6, 6) and trade.exit_price == 95
    assert not trade.gapped_through and trade.sessions_held == 4
    assert trade.exit_note == (
        "the 2025-06-06 bar reached both the stop 95.00 and the target 110.00: counted the stop "
        "(a daily bar does not say which came first)"
    )


def test_a_gap_through_the_stop_fills_at_the_open_with_slippage() -> None:
    trade = _buy([(101, 102, 99.5, 100), (93, 96, 92, 95), QUIET], costs=COSTS)
    assert trade.exit_reason == "stop_loss" and trade.gapped_through
    assert trade.exit_price == pytest.approx(93 * (1 - SLIP))
    assert trade.exit_note == (
        "the 2025-06-04 open 93.00 gapped through the stop 95.00: filled at the open"
    )


def test_the_target_fills_at_the_target_with_slippage_capped_at_the_limit() -> None:
    touch_then_through = [(101, 102, 99.5, 100), (105, 110, 104, 109), (109, 111, 108, 110), QUIET]
    trade = _buy(touch_then_through, costs=COSTS)
    assert trade.exit_reason == "take_profit" and trade.exit_date == dt.date(2025, 6, 5)
    assert trade.exit_price == 110.0  # 110 * (1 - 5 bp) is below the limit: capped at 110
    assert not trade.gapped_through and trade.slippage_per_share == 0.0
    assert trade.exit_note == "took profit on 2025-06-05 at the target 110.00"
    gap = _buy([(101, 102, 99.5, 100), (112, 113, 111, 112)], costs=COSTS)
    assert gap.gapped_through and gap.exit_price == pytest.approx(112 * (1 - SLIP))


def test_the_time_exit_is_at_the_close_of_the_nth_session_with_full_slippage() -> None:
    rows = [(101, 102, 99.5, 100.5), QUIET, (102, 104, 101, 103.2), (100, 100, 80, 81)]
    trade = _buy(rows, costs=COSTS, sessions=3)  # the 4th bar's stop is past the time exit
    assert trade.exit_reason == "time_exit" and trade.sessions_held == 3
    assert trade.exit_date == dt.date(2025, 6, 5)
    assert trade.exit_price == pytest.approx(103.2 * (1 - SLIP))
    assert trade.path_dates == [dt.date(2025, 6, 3), dt.date(2025, 6, 4), dt.date(2025, 6, 5)]
    assert trade.path_closes == [100.5, 102.0, 103.2]
    assert "by session 3 (2025-06-05): exited at the close 103.20" in trade.exit_note
    with pytest.raises(ValueError, match="needs that many bars"):
        _buy(rows, sessions=5)


def test_on_the_entry_bar_only_the_stop_triggers() -> None:
    # The entry bar reaches the target: ignored; the next bar's close is the time exit.
    target_only = _buy([(101, 115, 99, 112), (108, 109, 107, 108)])
    assert target_only.exit_reason == "time_exit" and target_only.exit_price == 108
    stopped = _buy([(101, 112, 94, 96), QUIET])
    assert stopped.exit_reason == "stop_loss" and stopped.exit_date == dt.date(2025, 6, 3)
    assert stopped.exit_price == 95 and stopped.sessions_held == 1
    assert not stopped.spanned_stop_and_target
    assert "only the stop counts" in stopped.exit_note
    # An open already below the stop: filled there and stopped out at once at that price.
    opened_past = _buy([(94, 96, 93, 95.5), QUIET])
    assert opened_past.entry_price == 94 and opened_past.exit_price == 94
    assert opened_past.gapped_through and opened_past.gross_return == 0


def test_a_short_bracket_is_mirrored() -> None:
    after = _after([(99, 100.5, 98, 99), (98, 99, 95, 96), (95, 96, 89, 90)])
    trade = simulate_bracket(OrderSide.SELL, 100, 105, 90, after, COSTS, 3)
    assert trade.entry_price == 100.0  # a sell limit receives no less than the limit
    assert trade.exit_reason == "take_profit" and trade.exit_price == 90.0
    assert trade.gross_return == pytest.approx(0.10)
    assert trade.net_return == pytest.approx((10 - 0.01) / 100)
    spanned = simulate_bracket(
        OrderSide.SELL, 100, 105, 90, _after([(99, 100.5, 98, 99), (100, 106, 89, 95)]),
        NO_COSTS, 2,
    )
    assert spanned.exit_reason == "stop_loss" and spanned.spanned_stop_and_target
    assert spanned.exit_price == 105 and spanned.gross_return == pytest.approx(-0.05)
    assert spanned.r_multiple == pytest.approx(-1.0)
    gap = simulate_bracket(
        OrderSide.SELL, 100, 105, 90, _after([(101, 102, 99, 101), (107, 108, 106, 107)]),
        COSTS, 2,
    )
    assert gap.entry_note.startswith("the open 101.00 on 2025-06-03 was through the SELL limit")
    assert gap.gapped_through and gap.exit_price == pytest.approx(107 * (1 + SLIP))


def test_costs_make_net_below_gross_by_the_exact_amounts() -> None:
    costs = CostModel(commission_per_share=0.01, commission_min=1, slippage_bps=10)
    trade = _buy([(99, 100, 98, 99.5), (94, 95, 93, 94.5), QUIET], costs=costs)
    entry, exit_ = 99 * 1.001, 94 * 0.999
    assert trade.entry_price == pytest.approx(entry) and trade.exit_price == pytest.approx(exit_)
    assert trade.gross_return == pytest.approx((94 - 99) / 99)
    assert trade.net_return == pytest.approx((exit_ - entry - 0.02) / entry)
    assert trade.r_multiple == pytest.approx((exit_ - entry - 0.02) / 5)
    assert trade.slippage_per_share == pytest.approx(0.099 + 0.094)
    assert trade.commission_per_share == pytest.approx(0.02)
    assert trade.net_return < trade.gross_return


# --- score_signal ----------------------------------------------------------------------------


def _signal(
    action: str = "BUY", day: dt.date = DAY, prices=(100.5, 90, 105), **kw: object
) -> TradingSignal:
    if action == "HOLD":
        prices = (None, None, None)
    fields = dict(
        symbol="TEST", as_of=day, action=action, confidence_score=70, confidence_level="MEDIUM",
        reasoning="r", key_factors=["k"], trend="NEUTRAL", provider="test", model_name="test",
        entry_price=prices[0], stop_loss=prices[1], take_profit=prices[2],
        position_size_pct=10 if action != "HOLD" else 0, actionable=action != "HOLD",
    )
    fields.update(kw)
    return TradingSignal(**fields)


def _market(sessions_after: int = 20, extra: int = 0) -> MarketData:
    """The signal day's bar (close 100), a rising series after it, then ``extra`` absurd bars."""
    rows = [(99.0, 101.0, 99.0, 100.0)]
    for i in range(sessions_after):
        close = 100 + i * 0.5
        rows.append((close - 0.2, close + 1, close - 1, close))
    rows += [(1e6, 2e6, 0.01, 1e6)] * extra
    dates = sessions_between(DAY, DAY + dt.timedelta(days=120))[: len(rows)]
    bars = pd.DataFrame(rows, columns=["open", "high", "low", "close"],
                        index=pd.DatetimeIndex(dates, name="date"))
    bars["volume"] = 1_000
    return MarketData(symbol="TEST", as_of=dates[-1].date(), source="csv",
                      source_detail="hand-built", bars=bars)


def _score(
    signal: TradingSignal, market: MarketData, latest: dt.date = dt.date(2025, 8, 1),
    costs: CostModel = COSTS,
) -> SignalOutcome:
    return score_signal(signal, prompt_version="v1", market=market, costs=costs,
                        exit_after_sessions=20, latest_closed=latest)


def test_not_yet_scorable_before_the_horizon_closes() -> None:
    outcome = _score(_signal(), _market(sessions_after=14), latest=dt.date(2025, 6, 20))
    assert not outcome.scorable and outcome.horizon_end == END
    assert outcome.status == (
        "not yet scorable: needs bars through 2025-07-01 (20 sessions after 2025-06-02); "
        "the latest closed session is 2025-06-20"
    )
    assert outcome.forward_returns == {} and outcome.trade is None
    assert outcome.max_favourable_excursion is None and outcome.forward_dates == []


def test_not_yet_scorable_when_the_source_lags() -> None:
    outcome = _score(_signal(), _market(sessions_after=18))
    assert not outcome.scorable and outcome.bars_through == dt.date(2025, 6, 27)
    assert outcome.status == (
        "not yet scorable: the source has bars through 2025-06-27; the horizon needs 2025-07-01"
    )


def test_bars_after_the_horizon_are_never_read() -> None:
    exact = _score(_signal(), _market())
    later = _score(_signal(), _market(extra=5))
    assert exact.scorable and exact.bars_through == END == exact.forward_dates[-1]
    assert later.model_dump() == exact.model_dump()
    assert max(later.forward_closes) < 200 and later.max_favourable_excursion < 1
    assert exact.forward_returns == {h: (100 + (h - 1) * 0.5) / 100 - 1 for h in HORIZONS}
    assert exact.trade is not None and exact.trade.exit_reason == "take_profit"
    assert exact.trade.entry_price == pytest.approx(99.8 * (1 + SLIP))  # filled at the open
    assert exact.trade.exit_date == dt.date(2025, 6, 16)  # high 100 + 4.5 + 1 > 105
    assert (exact.provider, exact.model_name, exact.prompt_version) == ("test", "test", "v1")


def test_a_missing_session_raises_naming_the_day() -> None:
    market = _market(extra=3)
    bars = market.bars.drop(pd.Timestamp("2025-06-10"))
    broken = market.model_copy(update={"bars": bars})
    with pytest.raises(OutcomeDataError, match="2025-06-10.*fix the source"):
        _score(_signal(), broken)
    no_day = market.model_copy(update={"bars": market.bars.drop(pd.Timestamp(DAY))})
    with pytest.raises(OutcomeDataError, match="no bar on the signal's day 2025-06-02"):
        _score(_signal(), no_day)


def test_hold_has_no_trade_and_is_read_long() -> None:
    outcome = _score(_signal("HOLD"), _market())
    assert outcome.scorable and outcome.trade is None and not outcome.actionable
    assert outcome.max_favourable_excursion == pytest.approx((100 + 19 * 0.5 + 1) / 100 - 1)
    assert outcome.max_adverse_excursion == pytest.approx(99 / 100 - 1)
    not_actionable = _score(_signal(actionable=False), _market())
    assert not_actionable.trade is None
    short = _score(_signal("SELL", prices=(100.5, 110, 90)), _market())
    assert short.max_favourable_excursion == pytest.approx(1 - 99 / 100)
    assert short.max_adverse_excursion == pytest.approx(1 - 110.5 / 100)
    assert short.trade is not None and short.trade.side is OrderSide.SELL


# --- real prices -----------------------------------------------------------------------------


def _real(symbol: str) -> MarketData:
    path = REAL / f"{symbol}.csv"
    bars = pd.read_csv(path, parse_dates=["date"], index_col="date")
    return MarketData(symbol=symbol, as_of=bars.index[-1].date(), source="csv",
                      source_detail=str(path), bars=bars)


@pytest.mark.parametrize("symbol", ["GOOG", "IBM"])
def test_the_real_files_have_a_bar_on_every_session(symbol: str) -> None:
    # The calendar starts in December 2006: check the sessions from 2007 on.
    bars = _real(symbol).bars.loc["2007-01-01":]
    sessions = sessions_between(dt.date(2007, 1, 1), dt.date(2013, 3, 1))
    assert bars.index.equals(sessions)
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()


SIGNAL_DAYS = ["2007-06-15", "2008-10-10", "2009-03-09", "2011-08-08", "2012-12-31"]


@pytest.mark.parametrize("day", SIGNAL_DAYS)
def test_score_signal_on_real_goog_matches_index_arithmetic(day: str) -> None:
    market = _real("GOOG")
    as_of = dt.date.fromisoformat(day)
    assert is_trading_day(as_of)
    index = market.bars.index
    pos = index.get_loc(pd.Timestamp(as_of))
    close, high, low = (market.bars[c].to_numpy() for c in ("close", "high", "low"))
    window = slice(pos + 1, pos + 21)

    # A limit above the next session's high fills at its open; the far stop and target leave the
    # time exit at the 20th session's close.
    next_open = market.bars["open"].iloc[pos + 1]
    levels = (high[pos + 1] * 1.01, close[pos] * 0.5, close[pos] * 2.0)
    buy = _score(_signal("BUY", as_of, prices=levels, symbol="GOOG"), market,
                 latest=dt.date(2013, 3, 1))
    assert buy.scorable and buy.close == close[pos]
    assert buy.horizon_end == index[pos + 20].date() == buy.bars_through
    assert buy.forward_returns == {h: close[pos + h] / close[pos] - 1 for h in HORIZONS}
    assert buy.max_favourable_excursion == high[window].max() / close[pos] - 1
    assert buy.max_adverse_excursion == low[window].min() / close[pos] - 1
    assert buy.forward_dates == [d.date() for d in index[window]]
    assert np.array_equal(buy.forward_closes, close[window])

    sell = _score(_signal("SELL", as_of, prices=(close[pos] * 1.001, close[pos] * 2.0,
                                                close[pos] * 0.5), symbol="GOOG"),
                  market, latest=dt.date(2013, 3, 1))
    assert sell.forward_returns == buy.forward_returns  # forward returns are not directional
    assert sell.max_favourable_excursion == 1 - low[window].min() / close[pos]
    assert sell.max_adverse_excursion == 1 - high[window].max() / close[pos]

    trade = buy.trade
    assert trade is not None and trade.entry_date == index[pos + 1].date()
    assert trade.entry_price == pytest.approx(next_open * (1 + SLIP))
    assert trade.exit_reason == "time_exit" and trade.exit_date == index[pos + 20].date()
    assert trade.exit_price == pytest.approx(close[pos + 20] * (1 - SLIP))
    assert trade.gross_return == pytest.approx(close[pos + 20] / next_open - 1)
    assert trade.path_closes == list(close[window])


# --- score_history ---------------------------------------------------------------------------


def _mixed_signals(market: MarketData, days: pd.DatetimeIndex) -> list[tuple[TradingSignal, str]]:
    """BUY / SELL / HOLD in turn, some BUY/SELL not actionable, limits near the day's close (so
    some fill at the open, some at the limit, some never) and brackets of varied widths."""
    rng = np.random.default_rng(7)
    closes = market.bars["close"]
    signals = []
    for i, day in enumerate(days):
        close = float(closes.loc[day])
        action = ("BUY", "SELL", "HOLD", "BUY", "SELL")[i % 5]
        entry, width = close * rng.uniform(0.985, 1.015), rng.uniform(0.004, 0.05)
        prices = (entry, entry * (1 - width), entry * (1 + 2 * width))
        if action == "SELL":
            prices = (entry, entry * (1 + width), entry * (1 - 2 * width))
        signal = _signal(action, day.date(), prices, symbol=market.symbol,
                         actionable=action != "HOLD" and i % 7 != 3)
        signals.append((signal, f"v{i % 3}"))
    return signals


def _cut(market: MarketData, end: dt.date) -> MarketData:
    bars = market.bars.loc[: pd.Timestamp(end)]
    return market.model_copy(update={"bars": bars, "as_of": bars.index[-1].date()})


def _one_by_one(
    signals: list[tuple[TradingSignal, str]], market: MarketData, exit_after: int,
    latest: dt.date,
) -> list[SignalOutcome]:
    return [
        score_signal(s, prompt_version=v, market=_cut(market, horizon_end(s.as_of, exit_after)),
                     costs=COSTS, exit_after_sessions=exit_after, latest_closed=latest)
        for s, v in signals
    ]


def _synthetic(end: dt.date, sessions: int) -> MarketData:
    return synthetic_bars("EQUIV", end, sessions)


@pytest.mark.parametrize("exit_after", [20, 3, 30])
def test_score_history_equals_score_signal_one_by_one(exit_after: int) -> None:
    goog = _real("GOOG")
    synthetic = _synthetic(dt.date(2025, 6, 30), 400)
    cases = [
        # Real bars through 2013-03-01; the latest closed session leaves the last days waiting.
        (goog, goog.bars.loc["2007-01-03":].index[::3], dt.date(2013, 2, 1)),
        # The source lags the calendar: the last horizons need bars it does not have yet.
        (synthetic, synthetic.bars.index[30::2], dt.date(2025, 8, 29)),
    ]
    for market, days, latest in cases:
        signals = _mixed_signals(market, days)
        history = score_history(signals, market=market, costs=COSTS,
                                exit_after_sessions=exit_after, latest_closed=latest)
        assert history == _one_by_one(signals, market, exit_after, latest)
        statuses = {o.status.split(":")[0] for o in history}
        assert statuses == {"scored", "not yet scorable"}
        assert any("the source has bars through" in o.status for o in history) == (
            market is synthetic
        )
        trades = [o.trade for o in history if o.trade is not None]
        assert {t.filled for t in trades} == {True, False}
        assert {t.exit_reason for t in trades if t.filled} == (
            {"stop_loss", "take_profit", "time_exit"}
        )
        assert any(o.scorable and o.action.value == "BUY" and o.trade is None for o in history)


def test_score_history_reads_no_bar_after_a_signal_horizon() -> None:
    market = _synthetic(dt.date(2025, 6, 30), 200)
    days = market.bars.index[20:140:4]
    signals = _mixed_signals(market, days)
    latest = market.as_of
    before = score_history(signals, market=market, costs=COSTS, exit_after_sessions=20,
                           latest_closed=latest)
    # Absurd prices on every session after the 10th signal's horizon, and sessions added after.
    cut = pd.Timestamp(horizon_end(days[10].date(), 20))
    later = market.bars.index > cut
    bars = market.bars.copy()
    bars.loc[later, ["open", "high", "low", "close"]] = (1e6, 2e6, 0.01, 1e6)
    added = sessions_between(latest + dt.timedelta(days=1), latest + dt.timedelta(days=30))
    extra = pd.DataFrame({"open": 1.0, "high": 1e9, "low": 0.01, "close": 5.0, "volume": 1},
                         index=pd.DatetimeIndex(added, name="date"))
    changed = market.model_copy(update={
        "bars": pd.concat([bars, extra]), "as_of": added[-1].date(),
    })
    after = score_history(signals, market=changed, costs=COSTS, exit_after_sessions=20,
                          latest_closed=added[-1].date())
    assert after[:11] == before[:11]
    assert all(o.scorable and o.bars_through <= cut.date() for o in after[:11])
    # The later signals did read the absurd bars: the change is visible where it may be.
    assert after[11:] != before[11:] and max(after[-1].forward_closes) == 1e6


def test_score_history_raises_as_score_signal_does() -> None:
    market = _market(extra=3)
    signals = [(_signal(day=DAY), "v1"), (_signal(day=dt.date(2025, 6, 3)), "v1")]
    kw = dict(costs=COSTS, exit_after_sessions=20, latest_closed=dt.date(2025, 8, 1))
    assert score_history([], market=market, **kw) == []
    broken = market.model_copy(update={"bars": market.bars.drop(pd.Timestamp("2025-06-10"))})
    with pytest.raises(OutcomeDataError, match="no bar on the session\\(s\\) 2025-06-10 between "
                                               "2025-06-02"):
        score_history(signals, market=broken, **kw)
    other = _signal(day=DAY, symbol="OTHER")
    with pytest.raises(ValueError, match="the market data is for TEST, the signal for OTHER"):
        score_history([signals[0], (other, "v1")], market=market, **kw)
    with pytest.raises(ValueError, match="at least 1"):
        score_history(signals, market=market, costs=COSTS, exit_after_sessions=0,
                      latest_closed=dt.date(2025, 8, 1))
