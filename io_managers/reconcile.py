"""Replay the spool into the stores exactly once, and verify that rows and objects agree.

``reconcile`` puts each spooled object (same key, same bytes: a repeat is harmless), inserts its
row (unique write key: a repeat finds the first row), and only then removes the entry. A replay
cut off anywhere and run again therefore ends with each artifact in the stores once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from io_managers.artifact_store import ArtifactStore, PreparedArtifact, StoreUnavailableError
from io_managers.spool import ArtifactSpool, SpoolEntry, SpoolError
from io_managers.validation import ASSET_TYPES


@dataclass
class ReconcileReport:
    moved: list[str] = field(default_factory=list)  # inserted now
    already_stored: list[str] = field(default_factory=list)  # a previous replay got there
    damaged: list[str] = field(default_factory=list)  # left in the spool for a person
    # Meant for other stores (spooled under another configuration): left in the spool.
    other_stores: list[str] = field(default_factory=list)
    remaining: int = 0  # still in the spool (a store is still down)
    stopped_by: str | None = None

    @property
    def complete(self) -> bool:
        return self.remaining == 0 and not self.damaged and not self.other_stores

    def lines(self) -> list[str]:
        out = [f"moved to the stores: {len(self.moved)}"]
        out += [f"  {line}" for line in self.moved]
        if self.already_stored:
            out.append(f"already in the stores (an earlier replay was cut off): "
                       f"{len(self.already_stored)}")
            out += [f"  {line}" for line in self.already_stored]
        if self.damaged:
            out.append(f"damaged, left in the spool: {len(self.damaged)}")
            out += [f"  {line}" for line in self.damaged]
        if self.other_stores:
            out.append(f"meant for other stores, not replayed here: {len(self.other_stores)}")
            out += [f"  {line}" for line in self.other_stores]
        if self.stopped_by:
            out.append(f"stopped: {self.stopped_by}")
        out.append(f"still in the spool: {self.remaining}")
        return out


def reconcile(store: ArtifactStore, spool: ArtifactSpool) -> ReconcileReport:
    """Move every spool entry into the stores, oldest first; stop at the first store outage."""
    report = ReconcileReport()
    entries = spool.entries()
    here = store.target()
    for index, entry in enumerate(entries):
        if not entry.meant_for(here):
            # Replaying it here would put another configuration's history into these stores.
            report.other_stores.append(
                f"{entry.describe()} was meant for {entry.target}: run `trading-signals "
                "reconcile` with DATABASE_URL and the object store set to that one"
            )
            continue
        try:
            payload = spool.payload(entry)
        except (SpoolError, OSError) as exc:
            report.damaged.append(f"{entry.describe()}: {exc}")
            continue
        prepared = PreparedArtifact(entry.record, payload, entry.object_key, entry.content_type)
        try:
            record, created = store.save_once(prepared)
        except StoreUnavailableError as exc:
            report.stopped_by = f"{entry.describe()}: {exc}"
            report.remaining = len(entries) - index
            return report
        spool.remove(entry)
        line = f"#{record.id} {entry.describe()} -> {record.object_uri}"
        (report.moved if created else report.already_stored).append(line)
    report.remaining = spool.count()
    return report


@dataclass(frozen=True)
class BrokerOrders:
    """The orders a broker knows for a day range, to compare with the order artifacts."""

    name: str  # where they were read, for people
    mode: str  # the trading mode whose order artifacts they answer for
    orders: Mapping[tuple[str, dt.date], str]  # (symbol, day) -> the order, described


def broker_orders_from(tickets: Sequence[Any], name: str, mode: str) -> BrokerOrders:
    """The orders a venue listed (``orders_between``), keyed by the partition of their reference."""
    from trading_assets.execution.venue import partition_of_ref

    found = {partition_of_ref(t.order_ref): t for t in tickets}
    return BrokerOrders(name, mode, {
        key: f"{t.order_ref} ({t.side.value} {t.quantity:g}, {t.status})"
        for key, t in found.items() if key is not None
    })


@dataclass
class VerifyReport:
    start: dt.date
    end: dt.date
    rows: int = 0
    objects: int = 0
    missing_objects: list[str] = field(default_factory=list)
    wrong_size: list[str] = field(default_factory=list)
    wrong_hash: list[str] = field(default_factory=list)
    orphan_objects: list[str] = field(default_factory=list)
    spooled: list[str] = field(default_factory=list)
    broker: str | None = None  # the broker compared with, or why none was
    broker_orders: int = 0
    broker_without_artifact: list[str] = field(default_factory=list)
    artifact_without_broker: list[str] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        return not (self.missing_objects or self.wrong_size or self.wrong_hash
                    or self.orphan_objects or self.spooled or self.broker_without_artifact
                    or self.artifact_without_broker)

    def lines(self) -> list[str]:
        out = [f"{self.start} .. {self.end}: {self.rows} rows, {self.objects} objects"]
        if self.broker is not None:
            out.append(f"broker: {self.broker}: {self.broker_orders} orders")
        sections: Sequence[tuple[str, list[str]]] = (
            ("rows whose object is missing", self.missing_objects),
            ("rows whose object has another size", self.wrong_size),
            ("rows whose object has another sha256", self.wrong_hash),
            ("objects without a row (orphans)", self.orphan_objects),
            ("artifacts still in the local spool (run `trading-signals reconcile`)", self.spooled),
            ("broker orders without an order artifact that says placed",
             self.broker_without_artifact),
            ("order artifacts that say placed, with no order at the broker",
             self.artifact_without_broker),
        )
        for title, items in sections:
            if items:
                out.append(f"{title}: {len(items)}")
                out += [f"  {item}" for item in items]
        out.append("consistent" if self.consistent else "differences found")
        return out


def verify(
    store: ArtifactStore,
    spool: ArtifactSpool,
    start: dt.date,
    end: dt.date,
    *,
    symbols: Sequence[str] | None = None,
    deep: bool = False,
    broker: BrokerOrders | None = None,
    broker_note: str | None = None,
) -> VerifyReport:
    """Compare rows and objects of partition days [start, end]; ``deep`` re-hashes each object.

    With ``broker``, also each partition's orders at the broker with its newest order artifact,
    both ways. ``broker_note`` says why no broker was compared (reported as is).
    """
    report = VerifyReport(start, end, broker=broker_note)
    rows = store.database.between(start, end, symbols=symbols)
    report.rows = len(rows)
    objects: dict[str, int] = {}
    for asset in ASSET_TYPES:
        for uri, size in store.object_store.list_objects(asset).items():
            if _in_range(_object_day_and_symbol(uri), start, end, symbols):
                objects[uri] = size
    report.objects = len(objects)
    pending = {e.record.object_uri: e for e in spool.entries()}
    for entry in pending.values():
        day = entry.record.partition_date
        if day is not None and start <= day <= end and (
            not symbols or entry.record.symbol in symbols
        ):
            report.spooled.append(entry.describe())
    referenced: set[str] = set()
    for row in rows:
        referenced.add(row.object_uri)
        where = f"#{row.id} {row.step_name} {row.partition_key} {row.object_uri}"
        size = objects.get(row.object_uri)
        if size is None and not store.object_store.exists(row.object_uri):
            report.missing_objects.append(where)
            continue
        if size is not None and size != row.size_bytes:
            report.wrong_size.append(f"{where}: {size} bytes, the row says {row.size_bytes}")
            continue
        if deep:
            try:
                store.read_payload(row)
            except Exception as exc:
                report.wrong_hash.append(f"{where}: {type(exc).__name__}")
    for uri in sorted(set(objects) - referenced):
        # An object whose row is waiting in the spool is accounted for there.
        if uri not in pending:
            report.orphan_objects.append(f"{uri} ({objects[uri]} bytes)")
    if broker is not None:
        _compare_broker(report, store, list(pending.values()), broker, start, end, symbols)
    return report


def _compare_broker(
    report: VerifyReport,
    store: ArtifactStore,
    pending: Sequence[SpoolEntry],
    broker: BrokerOrders,
    start: dt.date,
    end: dt.date,
    symbols: Sequence[str] | None,
) -> None:
    """Each broker order needs a newest order artifact saying placed, and the other way round."""
    report.broker = f"{broker.name} ({broker.mode})"
    orders = {
        key: text for key, text in broker.orders.items()
        if start <= key[1] <= end and (not symbols or key[0] in symbols)
    }
    report.broker_orders = len(orders)
    newest = {
        (row.symbol, row.partition_date): row
        for row in store.database.newest_per_partition(
            "order", start=start, end=end, symbols=symbols
        )
    }
    spooled = {(e.record.symbol, e.record.partition_date) for e in pending
               if e.record.step_name == "order"}
    for (symbol, day), text in sorted(orders.items()):
        row = newest.get((symbol, day))
        meta = (row.artifact_metadata or {}) if row is not None else {}
        if row is not None and meta.get("placed") and meta.get("mode") == broker.mode:
            continue
        said = (f"the newest, #{row.id}, says {meta.get('reason')!r}" if row is not None
                else "there is none in the stores")
        waiting = "; an order artifact is waiting in the spool" if (symbol, day) in spooled else ""
        report.broker_without_artifact.append(f"{symbol} {day}: {text}: {said}{waiting}")
    for (symbol, day), row in sorted(newest.items(), key=lambda kv: (kv[0][1], kv[0][0] or "")):
        meta = row.artifact_metadata or {}
        if meta.get("placed") and meta.get("mode") == broker.mode and (symbol, day) not in orders:
            report.artifact_without_broker.append(
                f"#{row.id} order {row.partition_key} says placed ({meta.get('reason')}), "
                f"{broker.name} has no order of {symbol} {day}"
            )


def _object_day_and_symbol(uri: str) -> tuple[str, str] | None:
    """(date, symbol) from an object URI ending in ``asset/SYMBOL/YYYY-MM-DD/file``."""
    parts = uri.rstrip("/").split("/")
    if len(parts) < 4:
        return None
    return parts[-2], parts[-3]


def _in_range(
    found: tuple[str, str] | None, start: dt.date, end: dt.date, symbols: Sequence[str] | None
) -> bool:
    if found is None:
        return False
    day_text, symbol = found
    try:
        day = dt.date.fromisoformat(day_text)
    except ValueError:
        return True  # not laid out as this pipeline writes objects: report it, whatever it is
    return start <= day <= end and (not symbols or symbol in symbols)
