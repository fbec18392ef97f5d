"""Figures of the artifact stores: write and load latency, and queries over a big table.

Two backends: SQLite + a local folder (the embedded default) and PostgreSQL + an S3-protocol
server (moto's, started here), when a PostgreSQL server answers on 127.0.0.1:5432.
"""

from __future__ import annotations

import atexit
import datetime as dt
import itertools
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.stats import Figure, median, p95
from io_managers.artifact_store import ArtifactStore
from resources.database import ArtifactDatabase, ArtifactRecord
from resources.object_store import LocalObjectStore, ObjectStore
from sql.engine import create_database_engine, is_sqlite, parse_database_url
from sql.migrate import upgrade
from sql.schema import artifacts

PG_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
ASSETS = ("market_data", "daily_chart", "weekly_chart", "llm_analysis", "trading_signal",
          "order", "portfolio")
TYPES = {"market_data": "market_data", "daily_chart": "chart", "weekly_chart": "chart",
         "llm_analysis": "llm", "trading_signal": "signal", "order": "order",
         "portfolio": "portfolio"}


@dataclass
class Backend:
    name: str
    url: str
    objects: ObjectStore
    root: Path

    def rows_url(self, rows: int) -> str:
        """Where this backend's big table of ``rows`` rows lives (see ``rows_url``)."""
        return rows_url(self.root, rows, postgres=not is_sqlite(self.url))


# -- backends --------------------------------------------------------------------------------


def postgres_available() -> str | None:
    """None if a PostgreSQL server answers, else why not."""
    try:
        engine = sa.create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except sa.exc.OperationalError as exc:
        return f"no PostgreSQL on 127.0.0.1:5432 ({str(exc.orig).strip().splitlines()[0]})"
    return None


@contextmanager
def postgres_database() -> Iterator[str]:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def s3_server() -> Iterator[ObjectStore]:
    from moto.server import ThreadedMotoServer

    from resources.s3_object_store import s3_object_store

    # Its web server logs every request; 800 lines of them would bury the table.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield s3_object_store(
            endpoint_url=f"http://{host}:{port}", bucket="bench-artifacts", access_key="bench",
            secret_key="bench-secret", region="us-east-1", max_attempts=2,
        )
    finally:
        server.stop()


@contextmanager
def backends(root: Path, with_postgres: bool) -> Iterator[list[Backend]]:
    found = [Backend("SQLite + local folder", f"sqlite:///{root / 'bench.db'}",
                     LocalObjectStore(root=str(root / "objects")), root)]
    if not with_postgres:
        yield found
        return
    with postgres_database() as url, s3_server() as objects:
        found.append(Backend("PostgreSQL + S3 protocol (moto)", url, objects, root))
        yield found


# -- write and load --------------------------------------------------------------------------


def _bare_write(engine: sa.Engine, objects: ObjectStore, record: ArtifactRecord,
                data: bytes, key: str) -> None:
    """The floor: put the same bytes and insert the same row, nothing else."""
    objects.put(key, data, "application/octet-stream")
    # A write key of its own: the row's is unique, and already taken by the row it copies.
    row = record.model_dump(exclude={"id"}, by_alias=True) | {"write_key": uuid.uuid4().hex}
    with engine.begin() as conn:
        conn.execute(sa.insert(artifacts).values(**row))


def write_load_figures(backend: Backend, values: dict[str, object], rounds: int) -> list[Figure]:
    upgrade(backend.url)
    database = ArtifactDatabase(url=backend.url, auto_migrate_sqlite=False)
    store = ArtifactStore(database, backend.objects)
    day = dt.date(2025, 5, 30)
    writes: list[float] = []
    records: list[ArtifactRecord] = []
    for i, asset in itertools.product(range(rounds), ASSETS):
        started = time.perf_counter()
        record = store.write(
            values[asset], asset_name=asset, symbol="BENCH", partition_key="2025-05-30|BENCH",
            partition_date=day, job_name="bench", run_id=f"run-{i}", step_key=asset,
        )
        writes.append(time.perf_counter() - started)
        records.append(record)
    loads: list[float] = []
    for record in records:
        started = time.perf_counter()
        store.load(record)
        loads.append(time.perf_counter() - started)

    engine = create_database_engine(backend.url)
    bare_writes: list[float] = []
    bare_reads: list[float] = []
    for n, record in enumerate(records):
        data = store.read_payload(record)
        started = time.perf_counter()
        _bare_write(engine, backend.objects, record, data, f"bare/{n}.bin")
        bare_writes.append(time.perf_counter() - started)
        started = time.perf_counter()
        with engine.connect() as conn:
            conn.execute(sa.select(artifacts).where(artifacts.c.id == record.id)).one()
        backend.objects.get(record.object_uri)
        bare_reads.append(time.perf_counter() - started)
    engine.dispose()
    database.dispose()
    note = f"{len(records)} artifacts (all seven kinds, {rounds} of each)"
    return [
        Figure(
            f"artifact write, {backend.name}: p95 (p50 {median(writes) * 1000:.1f} ms)",
            p95(writes) * 1000, "ms", "bare insert + put of the same bytes, p95",
            p95(bare_writes) * 1000, "<= 25 ms", p95(writes) <= 0.025, note,
        ),
        Figure(
            f"artifact load, {backend.name}: p95 (p50 {median(loads) * 1000:.1f} ms)",
            p95(loads) * 1000, "ms", "bare select + get of the same row and bytes, p95",
            p95(bare_reads) * 1000, "<= 15 ms", p95(loads) <= 0.015, note,
        ),
    ]


# -- the big table ---------------------------------------------------------------------------
# A million generated rows, one day per 700 (100 symbols x the seven assets): the store's queries
# and the browser's list endpoint measure over the same table, filled once per backend and process
# by whichever figure asks first (``filled``).

SYMBOLS = 100
PER_DAY = SYMBOLS * len(ASSETS)
START = dt.datetime(2020, 1, 1, 21, 0, tzinfo=dt.UTC)
_PROMPT = "Analyse the daily and weekly charts of {s} as of {d}. "  # six times over
_COLUMNS = (
    "name", "type", "symbol", "workflow_id", "execution_id", "step_name", "dag_id", "task_id",
    "partition_key", "partition_date", "prompt", "prompt_length", "model_name", "chart_type",
    "action", "confidence", "signal_data", "artifact_metadata", "object_uri", "content_hash",
    "size_bytes", "created_at", "updated_at",
)
# Enough for PostgreSQL to hold the generated rows' CTE in memory (its default, 4 MB, spills it).
_PG_WORK_MEM = "512MB"


def row_time(n: int) -> dt.datetime:
    """Row n's time: one day per 700 rows, a symbol every 10 s, an asset every second."""
    day, rest = divmod(n, PER_DAY)
    symbol, asset = divmod(rest, len(ASSETS))
    return START + dt.timedelta(days=day, seconds=symbol * 10 + asset)


def _rows_select(rows: int, postgres: bool) -> str:
    """The SELECT of the ``rows`` generated rows, run in the database: nothing crosses the wire.

    Row n is asset n % 7 of symbol S((n // 7) % 100) on day n // 700; both dialects make the same
    values (SQLite has no generate_series, repeat, lpad or to_char; PostgreSQL no printf).
    """
    start, clock = START.date().isoformat(), START.strftime("%H:%M:%S")
    if postgres:
        series, source = "", f"generate_series(0, {rows - 1}) AS n"
        day = f"to_char(DATE '{start}' + dn, 'YYYY-MM-DD')"
        created = f"TIMESTAMPTZ '{start} {clock}+00' + make_interval(days => dn, secs => x)"
        n12, n64 = "lpad(to_hex(n), 12, '0')", "lpad(to_hex(n), 64, '0')"
        six, json, date = "repeat({}, 6)", "jsonb_build_object", "day::date"
    else:
        series = f"seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < {rows - 1}), "
        source = "seq"
        day = f"date('{start}', '+' || dn || ' days')"
        # As SQLAlchemy stores an aware datetime in SQLite: UTC, microseconds, no offset.
        created = f"{day} || ' ' || time('{clock}', '+' || x || ' seconds') || '.000000'"
        n12, n64 = "printf('%012x', n)", "printf('%064x', n)"
        six, json, date = "replace(hex(zeroblob(6)), '00', {})", "json_object", "day"
    asset = " ".join(f"WHEN {i} THEN '{a}'" for i, a in enumerate(ASSETS))
    kind = " ".join(f"WHEN {i} THEN '{TYPES[a]}'" for i, a in enumerate(ASSETS))
    signal = ASSETS.index("trading_signal")
    piece = "'" + _PROMPT.format(s="' || sym || '", d="' || day || '") + "'"
    key = "a || '/' || sym || '/' || day || '/run-' || dn || '-' || s || '-' || n12 || '.bin'"
    values = {
        "name": "a || ':' || sym || ':' || day",
        "type": "t",
        "symbol": "sym",
        "workflow_id": "'bench'",
        "execution_id": "'run-' || dn || '-' || s",
        "step_name": "a",
        "dag_id": "'bench'",
        "task_id": "a",
        "partition_key": "day || '|' || sym",
        "partition_date": date,
        "prompt": f"CASE WHEN t = 'llm' THEN {six.format(piece)} END",
        "prompt_length": f"CASE WHEN t = 'llm' THEN 6 * length({piece}) END",
        "model_name": "CASE WHEN t IN ('llm', 'signal') THEN 'offline-rules-v1' END",
        "chart_type": "CASE a WHEN 'daily_chart' THEN 'daily' "
                      "WHEN 'weekly_chart' THEN 'weekly' END",
        "action": "act",
        "confidence": "CASE WHEN act IS NOT NULL THEN 60.0 END",
        "signal_data": f"CASE WHEN act IS NOT NULL THEN {json}('action', act, "
                       "'entry_price', 100.0) END",
        "artifact_metadata": f"{json}('content_type', 'application/octet-stream', "
                             f"'object_key', {key})",
        "object_uri": f"'file:///bench/' || {key}",
        "content_hash": "n64",
        "size_bytes": "100",
        "created_at": "created",
        "updated_at": "created",
    }
    assert tuple(values) == _COLUMNS
    # g is materialized: inlined into the outer SELECT, each row's day, names and times would be
    # formatted once per use (measured: 1.5x the time on SQLite, 1.3x on PostgreSQL).
    return f"""
        WITH RECURSIVE {series}g AS MATERIALIZED (
            SELECT n, dn, s, 'S' || s AS sym, CASE i {asset} END AS a, CASE i {kind} END AS t,
                {day} AS day, {created} AS created, {n12} AS n12, {n64} AS n64,
                CASE WHEN i = {signal} THEN CASE n % 3 WHEN 0 THEN 'BUY' WHEN 1 THEN 'SELL'
                    ELSE 'HOLD' END END AS act
            FROM (
                SELECT n, n / {PER_DAY} AS dn, (n / {len(ASSETS)}) % {SYMBOLS} AS s,
                    n % {len(ASSETS)} AS i,
                    ((n / {len(ASSETS)}) % {SYMBOLS}) * 10 + n % {len(ASSETS)} AS x
                FROM {source}
            ) AS numbered
        )
        SELECT {', '.join(values.values())} FROM g
    """


@contextmanager
def _bulk_engine(url: str) -> Iterator[sa.Engine]:
    """An engine for the fill only: the pipeline's statement timeout (30 s) is for the pipeline's
    queries, and the fill is a few statements of a million rows each, by design."""
    if is_sqlite(url):
        engine = sa.create_engine(parse_database_url(url))

        @sa.event.listens_for(engine, "connect")
        def _bulk(dbapi_connection: Any, _record: object) -> None:
            # A benchmark's scratch file, where a crash loses nothing: no fsync per page, and a
            # rollback journal, so the rows are written once (WAL writes them twice: to the log,
            # then to the file); the pipeline's engine switches WAL back on when it connects.
            # The index builds sort in 256 MB of memory, on two threads (with both: 17 s, not 20).
            for pragma in ("synchronous = OFF", "journal_mode = DELETE", "cache_size = -262144",
                           "threads = 2"):
                dbapi_connection.execute(f"PRAGMA {pragma}")
    else:
        engine = sa.create_engine(
            parse_database_url(url), connect_args={"options": "-c statement_timeout=0"}
        )
    try:
        yield engine
    finally:
        engine.dispose()


def fill(url: str, rows: int) -> float:
    """Migrate ``url`` and fill its artifacts table with ``rows`` generated rows; seconds it took.

    The secondary indexes are dropped while the rows go in and built after, then analysed (and on
    PostgreSQL vacuumed: index-only scans, the browser's COUNTs, need the visibility map).
    """
    started = time.perf_counter()
    upgrade(url)
    postgres = not is_sqlite(url)
    with _bulk_engine(url) as engine:
        with engine.begin() as conn:
            if postgres:
                conn.execute(sa.text(f"SET LOCAL work_mem = '{_PG_WORK_MEM}'"))
            for index in artifacts.indexes:
                conn.execute(sa.text(f"DROP INDEX {index.name}"))
            # Colons here are SQL (times, names), not bind parameters.
            select = _rows_select(rows, postgres).replace(":", "\\:")
            conn.execute(sa.text(f"INSERT INTO artifacts ({', '.join(_COLUMNS)}) {select}"))
            for index in artifacts.indexes:
                index.create(conn)
            if not postgres:
                conn.execute(sa.text("ANALYZE"))
        if postgres:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa.text("VACUUM ANALYZE"))
    return time.perf_counter() - started


# url -> (rows, seconds the fill took)
_filled: dict[str, tuple[int, float]] = {}
# The PostgreSQL databases of the big table (one per size), dropped when the process ends: the
# browser's figures run after the store's backends are closed.
_databases = ExitStack()
_postgres_rows: dict[int, str] = {}


def rows_url(root: Path, rows: int, *, postgres: bool) -> str:
    """Where the big table of ``rows`` rows lives: a file in ``root``, or a PostgreSQL database
    of its own for this process."""
    if not postgres:
        return f"sqlite:///{root / f'rows-{rows}.db'}"
    if rows not in _postgres_rows:
        if not _postgres_rows:
            atexit.register(_databases.close)
        _postgres_rows[rows] = _databases.enter_context(postgres_database())
    return _postgres_rows[rows]


def filled(url: str, rows: int) -> tuple[float, bool]:
    """``url`` with its ``rows`` generated rows: filled the first time a figure asks in this
    process, as it is after; (seconds the fill took, whether an earlier figure filled it)."""
    if url in _filled:
        count, seconds = _filled[url]
        if count != rows:
            raise ValueError(f"{url} holds the big table of {count:,} rows, not of {rows:,}")
        return seconds, True
    seconds = fill(url, rows)
    _filled[url] = (rows, seconds)
    return seconds, False


def fill_note(seconds: float, shared: bool) -> str:
    return (f"over the table an earlier figure filled (in {seconds:.0f} s)" if shared
            else f"table filled in {seconds:.0f} s")


# -- queries at scale --------------------------------------------------------------------------


def _queries(day_count: int) -> dict[str, tuple[sa.Select, str]]:
    """name -> (the indexed query the application runs, the same filter as a full scan)."""
    mid = START.date() + dt.timedelta(days=day_count // 2)
    by_symbol = (artifacts.c.symbol == "S7") & artifacts.c.partition_date.between(
        mid, mid + dt.timedelta(days=30)
    )
    by_run = artifacts.c.execution_id == f"run-{day_count // 2}-7"
    by_type = artifacts.c.type == "signal"
    return {
        "by symbol and 1-month date range": (
            sa.select(artifacts).where(by_symbol).order_by(artifacts.c.id.desc()), "symbol"),
        "by run": (sa.select(artifacts).where(by_run), "run"),
        "by type (newest 100)": (
            sa.select(artifacts).where(by_type).order_by(artifacts.c.id.desc()).limit(100),
            "type"),
    }


def _fetch(engine: sa.Engine, statement: sa.Select) -> int:
    with engine.connect() as conn:
        rows = conn.execute(statement).mappings().all()
    return len([ArtifactRecord.model_validate(dict(r)) for r in rows])


def _full_scan(engine: sa.Engine, statement: sa.Select) -> Callable[[], int]:
    """The same statement with every index disabled."""
    if is_sqlite(str(engine.url)):
        compiled = str(statement.compile(engine, compile_kwargs={"literal_binds": True}))
        scan = compiled.replace("FROM artifacts", "FROM artifacts NOT INDEXED", 1)

        def run() -> int:
            with engine.connect() as conn:
                return len(conn.exec_driver_sql(scan).all())
        return run

    def run_pg() -> int:
        with engine.begin() as conn:
            for setting in ("enable_indexscan", "enable_bitmapscan", "enable_indexonlyscan"):
                conn.execute(sa.text(f"SET LOCAL {setting} = off"))
            return len(conn.execute(statement).all())
    return run_pg


def query_figures(backend: Backend, rows: int, repeat: int) -> list[Figure]:
    url = backend.rows_url(rows)
    fill_seconds, shared = filled(url, rows)
    # The measured queries go through the pipeline's own engine, its statement timeout included.
    engine = create_database_engine(url)
    with engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(artifacts)).scalar_one()
    days = max(1, count // (SYMBOLS * len(ASSETS)))
    figures = []
    for name, (statement, _) in _queries(days).items():
        found = _fetch(engine, statement)  # warm the cache, as a running service has it
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            _fetch(engine, statement)
            times.append(time.perf_counter() - started)
        scan = _full_scan(engine, statement)
        scan_time = median([_time(scan) for _ in range(max(1, repeat // 5))])
        figures.append(
            Figure(
                f"query {name}, {count:,} rows, {backend.name}: median",
                median(times) * 1000, "ms", "the same query as a full table scan",
                scan_time * 1000, "<= 10 ms", median(times) <= 0.010,
                f"{found} rows returned; {fill_note(fill_seconds, shared)}",
            )
        )
    engine.dispose()
    return figures


def _time(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started
