"""The offline analyst: a deterministic rule set over the indicators, answering like an LLM would.

It needs no key and no network, so the whole graph runs anywhere; its model name says plainly
that it is rules, not a language model.
"""

from __future__ import annotations

from trading_assets.analysis.answer import SignalAnswer
from trading_assets.models import Action, Trend

OFFLINE_MODEL = "offline-rules-v1"


def _vote(value: float | None, reference: float | None) -> int:
    if value is None or reference is None:
        return 0
    return 1 if value > reference else -1 if value < reference else 0


def analyse(indicators: dict[str, float | None]) -> SignalAnswer:
    """Trend votes (price vs SMAs, SMA 50 vs 200, MACD) plus RSI extremes decide the action."""
    close = indicators.get("close")
    if close is None or close <= 0:
        raise ValueError("the offline analyst needs a positive close price")
    sma_20, sma_50, sma_200 = (indicators.get(k) for k in ("sma_20", "sma_50", "sma_200"))
    rsi, hist = indicators.get("rsi_14"), indicators.get("macd_hist")

    votes = {
        "close vs SMA 20": _vote(close, sma_20),
        "close vs SMA 50": _vote(close, sma_50),
        "SMA 50 vs SMA 200": _vote(sma_50, sma_200),
        "MACD histogram": _vote(hist, 0.0),
    }
    trend_net = sum(votes.values())
    factors = [
        f"{name}: {'bullish' if v > 0 else 'bearish'}" for name, v in votes.items() if v != 0
    ]
    missing = [n for n, k in (("SMA 200", sma_200), ("RSI", rsi)) if k is None]
    if missing:
        factors.append(f"not enough history for {', '.join(missing)}")
    rsi_adjustment, rsi_note = 0, ""
    if rsi is not None and rsi >= 70:
        rsi_adjustment, rsi_note = -1, f"RSI {rsi:.1f} overbought"
    elif rsi is not None and rsi <= 30:
        rsi_adjustment, rsi_note = 1, f"RSI {rsi:.1f} oversold"
    if rsi_note:
        factors.append(rsi_note)
    net = trend_net + rsi_adjustment
    if not factors:
        factors.append("no indicator gives a direction")

    trend = Trend.BULLISH if net >= 2 else Trend.BEARISH if net <= -2 else Trend.NEUTRAL
    action = Action.BUY if net >= 3 else Action.SELL if net <= -3 else Action.HOLD
    score = float(min(90, 40 + 12 * abs(net))) if action is not Action.HOLD else 40.0

    low, high = indicators.get("low_20") or close, indicators.get("high_20") or close
    support, resistance = min(low, close), max(high, close)
    entry = stop = target = None
    size = 0.0
    if action is not Action.HOLD:
        # Stop beyond the recent range but within 2-8 % of the entry, target at twice the risk.
        room = (close - support) if action is Action.BUY else (resistance - close)
        risk = min(max(room / close, 0.02), 0.08) * close
        sign = 1 if action is Action.BUY else -1
        entry = round(close, 2)
        stop = round(close - sign * risk, 2)
        target = round(close + sign * 2 * risk, 2)
        size = 10.0 if score >= 80 else 5.0 if score >= 50 else 2.0

    bullish = sum(1 for v in votes.values() if v > 0)
    bearish = sum(1 for v in votes.values() if v < 0)
    score_text = f"{bullish} bullish and {bearish} bearish trend votes make {trend_net:+d}"
    if rsi_adjustment:
        score_text += f", {rsi_note} counts {rsi_adjustment:+d}: net {net:+d}"
    reasoning = (
        f"Rules over the indicators: {score_text}. The trend is {trend.value} by that net score "
        f"(BULLISH at +2 or more, BEARISH at -2 or less); {action.value}, as BUY or SELL needs "
        "a net score of at least 3 in one direction."
    )
    return SignalAnswer(
        action=action,
        confidence_score=score,
        reasoning=reasoning,
        key_factors=factors[:8],
        trend=trend,
        support=round(support, 2),
        resistance=round(resistance, 2),
        entry_price=entry,
        stop_loss=stop,
        take_profit=target,
        position_size_pct=size,
    )
