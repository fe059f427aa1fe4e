"""The ledger writer child gives its core away between slices of a batch: Linux does not
always preempt a SCHED_IDLE task when a normal one wakes on its core, so a batch done in
one burst sometimes kept the serving process waiting for the scheduler tick. Pacing
splits the work; it never changes what is written."""

from __future__ import annotations

import io
import itertools
import os
import secrets
import struct
import time
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from sqlalchemy import select

from gateway.metering import process_store
from gateway.metering.events import UsageEvent
from gateway.metering.journal import encode
from gateway.metering.sql import SLICE, SqlStore, paced
from gateway.metering.tables import attempt_table, request_table
from tests.metering.factory import event, failed
from tests.metering.pg import pg_url


def _events(count: int) -> list[UsageEvent]:
    """A mix: plain, streamed with a failed attempt first, a cache hit, untagged."""
    made = []
    for i in range(count):
        kind = i % 4
        if kind == 1:
            made.append(event(f"req_{i}", stream=True, ttft_ms=40.0, attempts=(failed(), *event("x").attempts)))
        elif kind == 2:
            made.append(
                event(f"req_{i}", status="cache_hit", attempts=(), cost_usd=Decimal(0), saved_usd=Decimal("0.0001234"))
            )
        elif kind == 3:
            made.append(event(f"req_{i}", tags={}, cost_usd=Decimal("0.00000012345678905")))
        else:
            made.append(event(f"req_{i}"))
    return made


def _contents(store: SqlStore) -> list[list[tuple[Any, ...]]]:
    """Both tables, ordered, without the write time."""
    tables = []
    with store.engine.connect() as connection:
        for table in (request_table(), attempt_table()):
            columns = [c for c in table.columns if c.name != "recorded_at"]
            rows = connection.execute(select(*columns).order_by(*table.primary_key.columns)).all()
            tables.append([tuple(row) for row in rows])
    return tables


def _second_url(ledger_url: str, tmp_path: Any, request: pytest.FixtureRequest) -> str:
    if ledger_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'unpaced.db'}"
    database: str = request.getfixturevalue("pg_database")
    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(pg_url(database, driver=False), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return pg_url(database, schema)


def test_paced_calls_the_pause_after_every_slice() -> None:
    calls: list[int] = []
    seen: list[int] = []
    for item in paced(range(50), lambda: calls.append(len(seen)), every=16):
        seen.append(item)
    assert seen == list(range(50))
    assert calls == [16, 32, 48]
    assert list(paced(range(5), None)) == list(range(5))


def test_a_paced_store_writes_exactly_what_an_unpaced_one_does(
    ledger_url: str, tmp_path: Any, request: pytest.FixtureRequest
) -> None:
    pauses: list[float] = []
    batch = _events(203)
    paced_store = SqlStore(ledger_url, pause=lambda: pauses.append(time.perf_counter()))
    plain_store = SqlStore(_second_url(ledger_url, tmp_path, request))
    try:
        paced_store.write(batch)
        plain_store.write(batch)
        assert _contents(paced_store) == _contents(plain_store)
        assert len(_contents(paced_store)[0]) == 203
    finally:
        paced_store.close()
        plain_store.close()
    # Rows built, then each table's rows converted and sent, in slices.
    assert len(pauses) >= 3 * (203 // SLICE)


def test_no_slice_of_a_batch_holds_the_cpu_for_long(tmp_path: Any) -> None:
    """The child's whole path for one batch (decode, rows, insert) measured between pauses in
    this thread's CPU time (immune to preemption): the longest stretch without one is a
    small part of the batch."""
    marks: list[float] = []
    store = SqlStore(f"sqlite:///{tmp_path / 'ledger.db'}", pause=lambda: marks.append(time.thread_time()))
    store.ensure_schema()
    payload = b"\n".join(encode(item) for item in _events(500))
    answers = io.BytesIO()
    try:
        marks.append(time.thread_time())
        process_store.serve(io.BytesIO(struct.pack(">I", len(payload)) + payload), answers, store)
        marks.append(time.thread_time())
    finally:
        store.close()
    assert answers.getvalue() == b"ok\n"
    assert SqlStore(f"sqlite:///{tmp_path / 'ledger.db'}").count() == 500
    stretches = [later - earlier for earlier, later in itertools.pairwise(marks)]
    total = marks[-1] - marks[0]
    assert len(stretches) > 100
    assert max(stretches) < total / 10, (max(stretches), total)


def test_the_child_yields_its_core_between_slices(tmp_path: Any) -> None:
    store = process_store.child_store({process_store.URL_ENV: f"sqlite:///{tmp_path / 'ledger.db'}"})
    try:
        assert store.pause is os.sched_yield
    finally:
        store.close()
