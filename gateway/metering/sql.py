"""The ledger in SQL (SQLite by default, PostgreSQL via DATABASE_URL): batched,
idempotent inserts of request and attempt rows."""

from __future__ import annotations

import functools
import operator
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import orjson
from sqlalchemy import Insert, Table, create_engine, event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, Engine

from gateway.metering.events import UsageEvent
from gateway.metering.migrate import upgrade
from gateway.metering.money import quantize
from gateway.metering.rows import ledger_rows
from gateway.metering.tables import attempt_table, request_table

T = TypeVar("T")
#: A callable run between slices of a batch's CPU work (see `SqlStore`), or None.
Pause = Callable[[], None] | None
#: Events (or rows) per slice: up to about a tenth of a millisecond of Python work each.
SLICE = 8
#: Events per transaction when paced: a commit (and SQLite's WAL checkpoint, which runs in
#: the committing connection) is C work no pause can split, so it is kept small.
PACED_TRANSACTION = 64


def paced(items: Iterable[T], pause: Pause, every: int = SLICE) -> Iterator[T]:
    """`items`, calling `pause` after every `every` of them (nothing extra when None)."""
    if pause is None:
        yield from items
        return
    for count, item in enumerate(items, 1):
        yield item
        if count % every == 0:
            pause()


def normalise_url(url: str) -> str:
    """Use psycopg (v3) for a bare postgresql:// URL."""
    scheme, sep, rest = url.partition("://")
    if scheme in {"postgres", "postgresql"}:
        return f"postgresql+psycopg{sep}{rest}"
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "busy_timeout=10000", "foreign_keys=ON", "synchronous=NORMAL"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def make_engine(url: str, connect_timeout_s: int = 5) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": connect_timeout_s})


def insert_ignoring_duplicates(table: Table, dialect: str) -> Insert:
    """INSERT that skips rows whose primary key is already there (idempotent replay)."""
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    raise ValueError(f"unsupported ledger database {dialect!r}: use SQLite or PostgreSQL")


def _copy_value(name: str, value: Any) -> Any:
    if name == "tags":
        return orjson.dumps(value).decode()
    if isinstance(value, Decimal):
        return quantize(value)
    return value


def copy_ignoring_duplicates(
    connection: Connection, table: Table, rows: list[dict[str, Any]], pause: Pause = None
) -> None:
    """PostgreSQL with psycopg: COPY into a per-session temporary table, then
    INSERT ... SELECT ... ON CONFLICT DO NOTHING (about twice as fast as executemany)."""
    columns = [c.name for c in table.columns]
    staging = f"_staging_{table.name}"
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {table.name}) ON COMMIT DELETE ROWS")
        with cursor.copy(f"COPY {staging} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in paced(rows, pause):
                copy.write_row([_copy_value(name, row[name]) for name in columns])
        cursor.execute(f"INSERT INTO {table.name} SELECT * FROM {staging} ON CONFLICT DO NOTHING")
    finally:
        cursor.close()


def insert_rows(connection: Connection, table: Table, rows: list[dict[str, Any]], pause: Pause = None) -> None:
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg":
        copy_ignoring_duplicates(connection, table, rows, pause)
        return
    if connection.dialect.name == "sqlite":
        _sqlite_executemany(connection, table, rows, pause)
        return
    connection.execute(insert_ignoring_duplicates(table, connection.dialect.name), rows)


@functools.lru_cache(maxsize=16)
def _sqlite_insert_plan(table: Table, columns: tuple[str, ...], dialect: Dialect) -> tuple[str, tuple[Any, ...]]:
    """The INSERT text and each column's bind processor, computed once per table."""
    processors = tuple(table.c[name].type._cached_bind_processor(dialect) for name in columns)
    names = ", ".join(f'"{name}"' for name in columns)
    marks = ", ".join("?" for _ in columns)
    return f'INSERT INTO "{table.name}" ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING', processors


def _sqlite_executemany(connection: Connection, table: Table, rows: list[dict[str, Any]], pause: Pause = None) -> None:
    """One DBAPI executemany with pre-processed tuples: the same statement SQLAlchemy would
    run, without its per-row execution machinery (the writer shares the gateway's GIL).
    With `pause`, one executemany per slice of rows (same transaction): a single call is
    milliseconds of C that nothing can interrupt."""
    columns = tuple(rows[0])
    sql, processors = _sqlite_insert_plan(table, columns, connection.dialect)
    # The row's values in column order at C speed, then only the few columns with a bind
    # processor (dates, money, JSON) converted: the writer's CPU shares the machine with
    # the serving process, and a per-column generator was half of it.
    take = operator.itemgetter(*columns)
    converted = [(at, process) for at, process in enumerate(processors) if process is not None]
    params: list[tuple[Any, ...]] = []
    for row in paced(rows, pause):
        values = list(take(row)) if len(columns) > 1 else [row[columns[0]]]
        for at, process in converted:
            values[at] = process(values[at])
        params.append(tuple(values))
    if pause is None:
        connection.exec_driver_sql(sql, params)
        return
    # The slices go straight to the DBAPI cursor (the same connection and transaction):
    # SQLAlchemy's execution machinery per call cost more than the rows it sent.
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        for start in range(0, len(params), SLICE):
            if start:
                pause()
            cursor.executemany(sql, params[start : start + SLICE])
    finally:
        cursor.close()


def _unique(events: list[UsageEvent]) -> list[UsageEvent]:
    seen: dict[str, UsageEvent] = {}
    for item in events:
        seen.setdefault(item.request_id, item)
    return list(seen.values())


class SqlStore:
    """Usage:
    store = SqlStore("postgresql://corral@db/corral")   # migrated on first use
    store.write(events)                                  # blocking: call it from a worker thread

    `pause`, when given, runs between slices of a batch's CPU work (rows built, values
    converted, rows sent): the ledger writer child passes `os.sched_yield` so that its
    bursts never hold a core for long (see `gateway.metering.process_store`).
    """

    def __init__(self, url: str, *, connect_timeout_s: int = 5, pause: Pause = None) -> None:
        self.engine: Engine = make_engine(url, connect_timeout_s)
        self.pause = pause
        self._migrated = False
        self._lock = threading.Lock()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def ensure_schema(self) -> None:
        """Apply pending migrations once; raises (and retries next time) while the database is down."""
        with self._lock:
            if not self._migrated:
                upgrade(self.engine)
                self._migrated = True

    def write(self, events: list[UsageEvent]) -> None:
        """Insert a batch in one transaction (paced: in transactions of `PACED_TRANSACTION`
        events, each event's rows in one); request ids already present are skipped, so a
        batch that failed half-way is simply written again."""
        if not events:
            return
        self.ensure_schema()
        now = datetime.now(UTC)
        rows = [ledger_rows(item, now) for item in paced(_unique(events), self.pause)]
        step = PACED_TRANSACTION if self.pause is not None else len(rows)
        for start in range(0, len(rows), step):
            part = rows[start : start + step]
            with self.engine.begin() as connection:
                insert_rows(connection, request_table(), [r.request for r in part], self.pause)
                insert_rows(connection, attempt_table(), [a for r in part for a in r.attempts], self.pause)
            if self.pause is not None:
                self.pause()

    def count(self) -> int:
        self.ensure_schema()
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(request_table())).scalar_one())

    def close(self) -> None:
        self.engine.dispose()
