"""Completeness under database faults, against the real PostgreSQL: nothing listening,
and the connection cut mid-load then restored (through a loopback proxy: the machine's
server itself is never stopped). Every event ends up in exactly one row."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.metering.sink import QueueSink
from gateway.metering.sql import SqlStore
from gateway.metering.tables import attempt_table
from tests.metering.factory import event
from tests.metering.pg import PORT, pg_url
from tests.metering.proxy import CuttableProxy
from tests.metering.test_sink import eventually
from tests.support import free_port


@pytest.fixture
def proxy() -> Iterator[CuttableProxy]:
    cuttable = CuttableProxy(PORT)
    cuttable.start()
    yield cuttable
    cuttable.cut()


def _wal_count(directory: Path) -> int:
    return len(list(directory.glob("*.wal")))


def _counts(store: SqlStore) -> tuple[int, int]:
    with store.engine.connect() as conn:
        attempts = conn.execute(select(func.count()).select_from(attempt_table())).scalar_one()
    return store.count(), int(attempts)


async def test_nothing_listening_journals_everything_for_the_next_start(pg_schema_url: str, tmp_path: Path) -> None:
    nowhere = pg_url("corral", port=free_port())
    sink = QueueSink(SqlStore(nowhere, connect_timeout_s=1), tmp_path / "usage.journal", retry_interval_s=0.05)
    await sink.start()
    for i in range(200):
        sink.record(event(f"req_{i}"))
    await eventually(lambda: not sink.healthy and sink.depth == 0, "events journaled")
    await sink.close()
    assert _wal_count(tmp_path) > 0
    store = SqlStore(pg_schema_url)
    later = QueueSink(store, tmp_path / "usage.journal")
    await later.start()
    await later.close()
    assert _counts(store) == (200, 200)


async def test_postgres_cut_mid_load_then_restored_loses_and_duplicates_nothing(
    pg_database: str, pg_schema_url: str, proxy: CuttableProxy, tmp_path: Path
) -> None:
    schema = pg_schema_url.rsplit("%3D", 1)[1]
    store = SqlStore(pg_url(pg_database, schema, port=proxy.port), connect_timeout_s=1)
    sink = QueueSink(store, tmp_path / "usage.journal", retry_interval_s=0.05, batch_size=50)
    await sink.start()
    total = 3000
    for i in range(total):
        sink.record(event(f"req_{i}"))
        if i == 1000:
            proxy.cut()
        if i == 2000:
            await eventually(lambda: not sink.healthy, "the writer saw the database go")
            proxy.start()
        if i % 100 == 0:
            await asyncio.sleep(0.005)
    await eventually(lambda: sink.healthy, "the writer saw the database return")
    await sink.close()
    direct = SqlStore(pg_schema_url)
    assert _counts(direct) == (total, total)
    assert _wal_count(tmp_path) == 0
