"""Figures of the artifact stores: write and load latency, and queries over a big table.

Two backends: SQLite + a local folder (the embedded default) and PostgreSQL + an S3-protocol
server (moto's, started here), when a PostgreSQL server answers on 127.0.0.1:5432.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from bench.stats import Figure, median, p95
from io_managers.artifact_store import ArtifactStore
from resources.database import ArtifactDatabase, ArtifactRecord
from resources.object_store import LocalObjectStore, ObjectStore
from sql.engine import create_database_engine, is_sqlite
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
                     LocalObjectStore(root=str(root / "objects")))]
    if not with_postgres:
        yield found
        return
    with postgres_database() as url, s3_server() as objects:
        found.append(Backend("PostgreSQL + S3 protocol (moto)", url, objects))
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


# -- queries at scale --------------------------------------------------------------------------

SYMBOLS = 100


def _fill_sqlite(engine: sa.Engine, rows: int) -> None:
    days = max(1, rows // (SYMBOLS * len(ASSETS)))
    now = dt.datetime(2025, 6, 1, tzinfo=dt.UTC).isoformat(" ")
    start = dt.date(2020, 1, 1)

    def generate() -> Iterator[tuple]:
        n = 0
        for d in range(days):
            day = (start + dt.timedelta(days=d)).isoformat()
            for s in range(SYMBOLS):
                run = f"run-{d}-{s}"
                for asset in ASSETS:
                    n += 1
                    if n > rows:
                        return
                    digest = hashlib.sha256(str(n).encode()).hexdigest()
                    yield (f"{asset}:S{s}:{day}", TYPES[asset], f"S{s}", "bench", run, asset,
                           "bench", asset, f"{day}|S{s}", day, f"file:///o/{n}", digest, 100,
                           now, now)

    insert = (
        "INSERT INTO artifacts (name, type, symbol, workflow_id, execution_id, step_name, dag_id,"
        " task_id, partition_key, partition_date, object_uri, content_hash, size_bytes,"
        " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    )
    raw = engine.raw_connection()
    try:
        rows_iter = generate()
        while chunk := list(itertools.islice(rows_iter, 50_000)):
            raw.cursor().executemany(insert, chunk)
        raw.commit()
    finally:
        raw.close()


def _fill_postgres(engine: sa.Engine, rows: int) -> None:
    per_day = SYMBOLS * len(ASSETS)
    assets = "ARRAY[" + ",".join(f"'{a}'" for a in ASSETS) + "]"
    types = "ARRAY[" + ",".join(f"'{TYPES[a]}'" for a in ASSETS) + "]"
    sql = f"""
        INSERT INTO artifacts (name, type, symbol, workflow_id, execution_id, step_name, dag_id,
            task_id, partition_key, partition_date, object_uri, content_hash, size_bytes,
            created_at, updated_at)
        SELECT a || '\\:S' || s || '\\:' || d, t, 'S' || s, 'bench', 'run-' || dn || '-' || s, a,
            'bench', a, d || '|S' || s, d, 'file:///o/' || n, md5(n::text) || md5(n::text), 100,
            now(), now()
        FROM (
            SELECT n, (n / {per_day}) AS dn, ((n / {len(ASSETS)}) % {SYMBOLS}) AS s,
                   ({assets})[n % {len(ASSETS)} + 1] AS a, ({types})[n % {len(ASSETS)} + 1] AS t,
                   (DATE '2020-01-01' + (n / {per_day})::int) AS d
            FROM generate_series(0, {rows - 1}) AS n
        ) g
    """
    with engine.begin() as conn:
        conn.execute(sa.text(sql))
        conn.execute(sa.text("ANALYZE artifacts"))


def _queries(day_count: int) -> dict[str, tuple[sa.Select, str]]:
    """name -> (the indexed query the application runs, the same filter as a full scan)."""
    mid = dt.date(2020, 1, 1) + dt.timedelta(days=day_count // 2)
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
    url = backend.url.replace("bench.db", "bench_rows.db")
    upgrade(url)
    engine = create_database_engine(url)
    started = time.perf_counter()
    (_fill_sqlite if is_sqlite(url) else _fill_postgres)(engine, rows)
    fill_seconds = time.perf_counter() - started
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
                f"{found} rows returned; table filled in {fill_seconds:.0f} s",
            )
        )
    engine.dispose()
    return figures


def _time(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started
