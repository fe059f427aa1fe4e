"""ProcessStore: ledger inserts in a child process, with the sink's guarantees intact
(every event once, a dead child costs nothing but a retry)."""

from __future__ import annotations

import os
import signal
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.metering.process_store import LedgerWriteError, ProcessStore
from gateway.metering.sink import QueueSink
from gateway.metering.sql import SqlStore
from tests.metering.factory import event
from tests.metering.test_sink import _wal_files, eventually


def test_rows_written_by_the_child_are_the_events(ledger_url: str) -> None:
    store = ProcessStore(ledger_url)
    try:
        store.write([event(f"req_{i}", cost_usd=Decimal("0.0000123456")) for i in range(50)])
        store.write([event("req_0"), event("req_50")])  # a replayed id is skipped, a new one added
        assert store.child_pid is not None and store.child_pid != os.getpid()
    finally:
        store.close()
    reader = SqlStore(ledger_url)
    assert reader.count() == 51
    assert store.child_pid is None


async def test_a_killed_child_loses_nothing(ledger_url: str, tmp_path: Path) -> None:
    store = ProcessStore(ledger_url)
    sink = QueueSink(store, tmp_path / "usage.journal", retry_interval_s=0.05, flush_interval_s=0.01)
    await sink.start()
    for i in range(100):
        sink.record(event(f"req_{i}"))
    await eventually(lambda: store.count() == 100, "first rows written by the child")
    assert store.child_pid is not None
    os.kill(store.child_pid, signal.SIGKILL)
    for i in range(100, 300):
        sink.record(event(f"req_{i}"))
    await eventually(lambda: store.count() == 300, "rows after the kill written by a new child")
    await sink.close()
    assert store.count() == 300
    assert _wal_files(tmp_path) == []


def test_the_child_reports_only_the_error_type(tmp_path: Path) -> None:
    """A database error crosses back without its message (which can hold the URL)."""
    store = ProcessStore(f"sqlite:///{tmp_path / 'ok.db'}")
    store._url = f"sqlite:///{tmp_path / 'no-such-dir' / 'ledger.db'}"  # only the child's file is unreachable
    try:
        with pytest.raises(LedgerWriteError) as failure:
            store.write([event("req_1")])
    finally:
        store.close()
    assert str(failure.value) == "OperationalError"
