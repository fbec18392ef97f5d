"""The order path when a store is down or the order's artifact is only in the spool: the broker
is asked first, nothing is sent that could not be recorded, at most one order a symbol-day."""

from __future__ import annotations

import contextlib
from pathlib import Path

from tests.io_managers import examples
from trading_assets.execution.paper_broker import PaperBroker
from trading_assets.execution.placement import OrderRequest, place_once
from trading_assets.execution.rules import RiskLimits

DAY = examples.DAY


def _request(**kw: object) -> OrderRequest:
    market = examples.market_data(DAY)
    close = market.latest_close
    base = examples.signal(DAY)
    signal = type(base).model_validate({
        **base.model_dump(), "action": "BUY", "confidence_score": 80, "entry_price": close,
        "stop_loss": round(close * 0.95, 2), "take_profit": round(close * 1.1, 2),
    })
    return OrderRequest(symbol="TSLA", day=DAY, mode="simulate", signal=signal, market=market,
                        limits=RiskLimits(), **kw)  # type: ignore[arg-type]


def _place(broker: PaperBroker, req: OrderRequest):  # noqa: ANN202
    return place_once(req, prior=None, open_venue=lambda: contextlib.nullcontext(broker))


def test_with_a_store_down_nothing_is_sent(tmp_path: Path) -> None:
    broker = PaperBroker(f"sqlite:///{tmp_path}/paper.db", 100_000)
    decision, _ = _place(broker, _request(stores_down="object store: ObjectStoreError: refused"))
    assert not decision.placed and decision.reason.startswith("not sent: the artifact stores")
    assert "could not be recorded" in decision.reason
    assert broker.orders_between(DAY, DAY) == []


def test_the_order_at_the_broker_is_recorded_whatever_the_spool_or_stores_say(
    tmp_path: Path,
) -> None:
    broker = PaperBroker(f"sqlite:///{tmp_path}/paper.db", 100_000)
    sent, _ = _place(broker, _request())
    assert sent.placed and sent.order is not None and not sent.reused_existing
    # Its artifact went to the spool; the rerun before reconcile records the real order.
    for kw in ({"spooled": ("order",)}, {"stores_down": "database: OperationalError: refused"}):
        again, _ = _place(broker, _request(**kw))
        assert again.placed and again.reused_existing and again.order == sent.order
    assert len(broker.orders_between(DAY, DAY)) == 1  # still one order for the symbol-day
