"""The scorecard as a compact fixed-width table for the terminal (the CLI prints it)."""

from __future__ import annotations

import textwrap

from trading_assets.evaluation.models import (
    HORIZONS,
    Comparison,
    EquityCurve,
    GroupScore,
    Interval,
    Scorecard,
)
from trading_assets.models import Action

WIDTH = 100
LABEL = 24
CELL = 25
MAX_SYMBOLS_SHOWN = 12


def _signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:+.2f}%"


def _cell(iv: Interval | None, spec: str, unit: str, scale: float = 100.0) -> str:
    """An estimate with its 95 % interval, e.g. ``+0.90% [-0.59, +1.68]``."""
    if iv is None or iv.estimate is None:
        return "n/a"
    shown = f"{iv.estimate * scale:{spec}}{unit}"
    if iv.low is None or iv.high is None:
        return f"{shown} [no CI]"
    return f"{shown} [{iv.low * scale:{spec}}, {iv.high * scale:{spec}}]"


def _return_cell(iv: Interval | None) -> str:
    """A return or an edge: signed percent."""
    return _cell(iv, "+.2f", "%")


def _share_cell(iv: Interval | None) -> str:
    """A hit or win rate: percent of the signals (no sign: it is a share)."""
    return _cell(iv, ".2f", "%")


def _r_cell(iv: Interval) -> str:
    return _cell(iv, "+.2f", "R", scale=1.0)


def _n(intervals: dict[int, Interval]) -> int:
    return max((iv.n for iv in intervals.values()), default=0)


def _wrap(text: str, indent: str = "  ") -> list[str]:
    return textwrap.wrap(text, WIDTH, subsequent_indent=indent)


def _row(label: str, cells: list[str]) -> str:
    return (label.ljust(LABEL) + "".join(c.ljust(CELL) for c in cells)).rstrip()


def _horizon_header(title: str) -> str:
    names = [f"{h} session" + ("" if h == 1 else "s") for h in HORIZONS]
    return _row(title, names)


def _group_block(group: GroupScore) -> list[str]:
    name = "all signals" if group.by == "all" else f"{group.by} {group.key}"
    counts = "  ".join(f"{a} {group.counts.get(a, 0)}" for a in ("BUY", "SELL", "HOLD"))
    lines = [
        f"== {name}: {group.outcomes} scored on {group.days} days, {len(group.symbols)} symbols; "
        f"{counts}",
        _horizon_header("(95% CI)"),
        _row(f"BUY+SELL hit n={_n(group.hit_rate)}",
             [_share_cell(group.hit_rate.get(h)) for h in HORIZONS]),
        _row("mean, all signals", [_signed(group.unconditional_mean.get(h)) for h in HORIZONS]),
    ]
    for stats in group.actions:
        if stats.count == 0:
            continue
        a = stats.action.value
        lines.append(_row(f"{a} mean n={stats.count}",
                          [_return_cell(stats.mean_return.get(h)) for h in HORIZONS]))
        lines.append(_row(f"{a} edge", [_return_cell(stats.edge.get(h)) for h in HORIZONS]))
        if stats.action is not Action.HOLD:
            lines.append(_row(f"{a} hit rate",
                              [_share_cell(stats.hit_rate.get(h)) for h in HORIZONS]))
    levels = [r for r in group.calibration if r.kind == "level" and r.count]
    if levels:
        lines.append("calibration by confidence level: BUY/SELL hit rate (n, ~mean score)")
        for r in levels:
            score = "" if r.mean_score is None else f" ~{r.mean_score:.0f}"
            lines.append(_row(f"  {r.bucket} n={_n(r.hit_rate)}{score}",
                              [_share_cell(r.hit_rate.get(h)) for h in HORIZONS]))
    t = group.trades
    pf = "n/a (no losses)" if t.profit_factor is None else f"{t.profit_factor:.2f}"
    held = "n/a" if t.average_sessions_held is None else f"{t.average_sessions_held:.1f}"
    exits = ", ".join(f"{k} {v}" for k, v in t.exits.items()) or "none"
    lines += _wrap(
        f"trades (SELL as hypothetical shorts): {t.signals} actionable BUY/SELL, {t.filled} "
        f"filled; win rate {_share_cell(t.win_rate)}; expectancy {_r_cell(t.expectancy_r)}; "
        f"profit factor {pf}; {held} sessions held on average; {t.spanned_stop_and_target} "
        f"bars spanned stop and target; exits: {exits}"
    )
    lines += _wrap(f"verdict: {group.verdict}")
    return lines


def _curve_block(curve: EquityCurve | None) -> list[str]:
    if curve is None:
        return ["account: nothing to follow yet"]
    lines = [
        *_wrap(f"account from {curve.starting_cash:,.0f} USD, {curve.dates[0]} to "
               f"{curve.dates[-1]} (BUY brackets only: the simulator does not sell short)"),
        _row("", ["total return", "Sharpe (annualised)", "max drawdown"]),
    ]
    for name, s in (("signals", curve.strategy_stats), ("buy and hold", curve.buy_and_hold_stats)):
        sharpe = "n/a" if s.annualised_sharpe is None else f"{s.annualised_sharpe:+.2f}"
        lines.append(_row(name, [_signed(s.total_return), sharpe, _signed(s.max_drawdown)]))
    return lines


def _comparison_block(comparisons: list[Comparison]) -> list[str]:
    lines = ["== comparisons (first minus second, mean directional return on shared symbol-days)"]
    for c in comparisons:
        lines.append(_row(f"{c.first} - {c.second}"[:LABEL - 1],
                          [_return_cell(c.difference.get(h)) for h in HORIZONS]))
        lines += textwrap.wrap(c.verdict, WIDTH, initial_indent="  ", subsequent_indent="    ")
    return lines


def format_scorecard(card: Scorecard, by: str | None = None) -> str:
    """The scorecard as text; ``by`` ("provider" | "model" | "prompt"): one block per group of
    that kind and their comparisons instead of the block of all signals."""
    if by not in (None, "provider", "model", "prompt"):
        raise ValueError(f"by must be provider, model or prompt, got {by!r}")
    period = f"{card.start} to {card.end}" if card.start else "no scored signals yet"
    shown = ", ".join(card.symbols[:MAX_SYMBOLS_SHOWN])
    more = f" and {len(card.symbols) - MAX_SYMBOLS_SHOWN} more" if (
        len(card.symbols) > MAX_SYMBOLS_SHOWN) else ""
    blocks = "/".join(str(card.block_sessions.get(h, h)) for h in HORIZONS)
    lines = [
        f"Scorecard: {period}",
        f"symbols ({len(card.symbols)}): {shown or '-'}{more}",
        f"scored {card.scored}, not yet scorable {card.not_yet_scorable}",
        *_wrap(f"intervals: 95% block bootstrap over trading days ({card.bootstrap_resamples} "
               f"resamples, seed {card.bootstrap_seed}, blocks of {blocks} sessions); costs: "
               f"{card.costs.describe()}"),
        "",
    ]
    if by is None:
        lines += _group_block(card.overall)
    else:
        groups = [g for g in card.groups if g.by == by]
        if not groups:
            lines.append(f"(a single {by} in these outcomes: every signal is in the block below)")
            lines += _group_block(card.overall)
        for g in groups:
            lines += [*_group_block(g), ""]
        comparisons = [c for c in card.comparisons if c.by == by]
        if comparisons:
            lines += _comparison_block(comparisons)
    lines += ["", *_curve_block(card.equity_curve)]
    return "\n".join(lines).rstrip() + "\n"
