"""The simulator's times survive the database: the session's New York close, as UTC, on SQLite and
on a real PostgreSQL server (see tests/servers.py: skips without one, fails under CI=true)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from tests.servers import throwaway_postgres_database
from trading_assets.execution.paper_broker import PaperBroker
from trading_assets.execution.paper_broker import fills as paper_fills
from trading_assets.execution.paper_broker import orders as paper_orders
from trading_assets.execution.rules import OrderIntent, order_ref
from trading_assets.models import OrderSide

INTENT = OrderIntent(OrderSide.BUY, 10, 100.0, 95.0, 110.0, "test")
# (signal day, next session, the two closes in UTC): summer time, then winter time.
SESSIONS = [
    (dt.date(2025, 6, 2), dt.date(2025, 6, 3), 20),
    (dt.date(2025, 1, 9), dt.date(2025, 1, 10), 21),
]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def paper_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/paper.db"
        return
    with throwaway_postgres_database(prefix="paper_test") as url:
        # A session zone that is neither UTC nor New York: the times must not depend on it.
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{engine.url.database}" SET timezone TO '
                                 "'Asia/Tokyo'"))
        engine.dispose()
        yield url


def _bar(day: dt.date) -> pd.DataFrame:
    frame = pd.DataFrame(
        [(pd.Timestamp(day), 101.0, 102.0, 99.0, 100.0, 1_000)],
        columns=["date", "open", "high", "low", "close", "volume"],
    )
    return frame.set_index("date")


@pytest.mark.parametrize(("day", "next_day", "close_hour"), SESSIONS)
def test_submitted_and_filled_at_are_the_sessions_close_in_utc(
    paper_url: str, day: dt.date, next_day: dt.date, close_hour: int
) -> None:
    broker = PaperBroker(paper_url, 10_000)
    ref = order_ref("TSLA", day, "BUY")
    ticket, _ = broker.submit(ref, "TSLA", day, INTENT, close=100.0)
    broker.process_bars("TSLA", _bar(next_day), next_day)
    broker.engine.dispose()

    # A new process reads them back: the same instants, as aware UTC datetimes.
    reader = PaperBroker(paper_url, 10_000)
    submitted_at = dt.datetime.combine(day, dt.time(close_hour), tzinfo=dt.UTC)
    filled_at = dt.datetime.combine(next_day, dt.time(close_hour), tzinfo=dt.UTC)
    found = reader.find_order(ref)
    assert found is not None and found.submitted_at == ticket.submitted_at == submitted_at
    assert found.submitted_at.utcoffset() == dt.timedelta(0)
    (fill,) = reader.fills_for(ref)
    assert fill.filled_at == filled_at and fill.filled_at.utcoffset() == dt.timedelta(0)
    assert reader.snapshot(next_day, "TSLA").fills_today[0].filled_at == filled_at

    # Stored as UTC too: a naive value (SQLite keeps no zone) reads as the UTC close hour.
    with reader.engine.connect() as conn:
        stored = conn.execute(sa.select(paper_orders.c.submitted_at)).scalar_one()
        stored_fill = conn.execute(sa.select(paper_fills.c.filled_at)).scalar_one()
    if stored.tzinfo is None:
        assert stored.hour == close_hour and stored_fill.hour == close_hour
    else:
        assert stored == submitted_at and stored_fill == filled_at
    reader.engine.dispose()
