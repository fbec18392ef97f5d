"""How `trading-signals backfill` cuts a symbol's days into ranged runs."""

from __future__ import annotations

import datetime as dt

from trading_assets.backfill import DAYS_PER_RUN, chunks


def _days(n: int) -> list[dt.date]:
    return [dt.date(2025, 1, 1) + dt.timedelta(days=i) for i in range(n)]


def test_runs_of_up_to_days_per_run_in_date_order() -> None:
    days = _days(DAYS_PER_RUN * 2 + 5)
    runs = chunks(days)
    assert [len(r) for r in runs] == [DAYS_PER_RUN, DAYS_PER_RUN, 5]
    assert [d for r in runs for d in r] == days


def test_the_first_worker_runs_its_first_day_alone_so_the_others_wait_one_day() -> None:
    # The other workers start once the first run of the first worker ends (new schemas): before,
    # that run was 60 days and the second worker idled through all of them (CLI 45/min in bench).
    days = _days(DAYS_PER_RUN + 1)
    runs = chunks(days, first_alone=True)
    assert [len(r) for r in runs] == [1, DAYS_PER_RUN]
    assert [d for r in runs for d in r] == days
    assert chunks(_days(1), first_alone=True) == [_days(1)]
    assert chunks([], first_alone=True) == []
