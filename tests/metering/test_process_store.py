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


@pytest.mark.parametrize(("priority", "policy"), [("idle", os.SCHED_IDLE), ("normal", os.SCHED_OTHER)])
def test_the_writer_runs_at_the_configured_cpu_priority(ledger_url: str, priority: str, policy: int) -> None:
    """By default the writer only gets CPU time nothing else wants (its insert bursts were
    the gateway's p99 at one connection); `ledger_writer_priority: normal` keeps it a peer."""
    store = ProcessStore(ledger_url, priority=priority)
    try:
        store.write([event("req_priority")])
        assert store.child_pid is not None
        assert os.sched_getscheduler(store.child_pid) == policy
    finally:
        store.close()
    assert SqlStore(ledger_url).count() == 1


def test_the_configured_priority_reaches_the_gateways_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.config import load_settings
    from gateway.runtime import ledger_store

    monkeypatch.setenv("CORRAL_LEDGER_WRITER_PRIORITY", "normal")
    store = ledger_store(load_settings(None))
    assert isinstance(store, ProcessStore) and store._priority == "normal"
    monkeypatch.delenv("CORRAL_LEDGER_WRITER_PRIORITY")
    store = ledger_store(load_settings(None))
    assert isinstance(store, ProcessStore) and store._priority == "idle"
