"""QueueSink: batches, journals when the store fails, replays idempotently, survives a
crash, drains on close."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.metering.events import UsageEvent
from gateway.metering.journal import Journal, JournalBusy, encode
from gateway.metering.sink import QueueSink
from gateway.metering.sql import SqlStore
from tests.metering.factory import event


class SwitchableStore:
    """A real store that can be made to fail like an unreachable database."""

    def __init__(self, inner: SqlStore) -> None:
        self.inner = inner
        self.down = False
        self.batches: list[int] = []

    def ensure_schema(self) -> None:
        if self.down:
            raise ConnectionError("database unreachable")
        self.inner.ensure_schema()

    def write(self, events: list[UsageEvent]) -> None:
        if self.down:
            raise ConnectionError("database unreachable")
        self.batches.append(len(events))
        self.inner.write(events)

    def close(self) -> None:
        self.inner.close()


async def eventually(condition: object, what: str, limit_s: float = 20.0) -> None:
    """Wait (bounded) for a condition; fails with `what` if it never holds."""
    assert callable(condition)
    for _ in range(int(limit_s / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"never happened: {what}")


def _wal_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.wal"))


async def test_events_are_batched_into_the_ledger_and_the_journal_emptied(store: SqlStore, tmp_path: Path) -> None:
    switch = SwitchableStore(store)
    sink = QueueSink(switch, tmp_path / "usage.journal", batch_size=100)
    await sink.start()
    for i in range(1000):
        sink.record(event(f"req_{i}"))
    await eventually(lambda: store.count() == 1000, "all 1000 rows written")
    await sink.close()
    assert max(switch.batches) <= 100 and sum(switch.batches) >= 1000
    assert _wal_files(tmp_path) == []


async def test_a_failing_store_journals_then_replays_once_it_is_back(store: SqlStore, tmp_path: Path) -> None:
    switch = SwitchableStore(store)
    sink = QueueSink(switch, tmp_path / "usage.journal", retry_interval_s=0.05)
    await sink.start()
    switch.down = True
    for i in range(300):
        sink.record(event(f"req_{i}"))
    await eventually(lambda: not sink.healthy, "the writer noticed the failure")
    for i in range(300, 600):
        sink.record(event(f"req_{i}"))
    await eventually(lambda: sink.depth == 0, "queue consumed while the store is down")
    assert store.count() == 0 and _wal_files(tmp_path)
    switch.down = False
    await eventually(lambda: store.count() == 600, "journal replayed")
    for i in range(600, 700):
        sink.record(event(f"req_{i}"))
    await sink.close()
    assert store.count() == 700


async def test_after_a_crash_the_next_start_replays_the_journal(store: SqlStore, tmp_path: Path) -> None:
    path = tmp_path / "usage.journal"
    crashed = QueueSink(SwitchableStore(store), path)
    for i in range(250):
        crashed.record(event(f"req_{i}"))
    crashed.journal.close()
    restarted = QueueSink(SwitchableStore(store), path)
    await restarted.start()
    await eventually(lambda: store.count() == 250, "replayed after restart")
    restarted.record(event("req_0"))
    await restarted.close()
    assert store.count() == 250 and _wal_files(tmp_path) == []


async def test_a_full_queue_loses_nothing(store: SqlStore, tmp_path: Path) -> None:
    sink = QueueSink(SwitchableStore(store), tmp_path / "usage.journal", max_queue=5)
    for i in range(50):
        sink.record(event(f"req_{i}"))
    assert sink.depth == 5
    await sink.start()
    await sink.close()
    assert store.count() == 50


async def test_close_puts_everything_into_the_ledger(store: SqlStore, tmp_path: Path) -> None:
    sink = QueueSink(SwitchableStore(store), tmp_path / "usage.journal")
    await sink.start()
    for i in range(2000):
        sink.record(event(f"req_{i}"))
    await sink.close()
    assert store.count() == 2000


async def test_a_torn_last_line_is_skipped_and_the_rest_replayed(store: SqlStore, tmp_path: Path) -> None:
    path = tmp_path / "usage.journal"
    journal = Journal(path)
    journal.append([event("req_1"), event("req_2")])
    journal.close()
    with journal.segment(1).open("ab") as handle:
        handle.write(encode(event("req_3"))[:40])
    sink = QueueSink(SwitchableStore(store), path)
    await sink.start()
    await sink.close()
    assert store.count() == 2


def test_two_processes_never_share_a_journal(tmp_path: Path) -> None:
    first = Journal(tmp_path / "usage.journal")
    with pytest.raises(JournalBusy, match="in use"):
        Journal(tmp_path / "usage.journal")
    first.close()
    Journal(tmp_path / "usage.journal").close()


async def test_the_older_single_file_journal_is_replayed(store: SqlStore, tmp_path: Path) -> None:
    path = tmp_path / "usage.journal"
    path.write_bytes(b"".join(encode(event(f"req_{i}")) + b"\n" for i in range(3)))
    sink = QueueSink(SwitchableStore(store), path)
    await sink.start()
    await sink.close()
    assert store.count() == 3 and not path.exists()


async def test_the_backlog_is_what_is_not_yet_in_the_ledger(store: SqlStore, tmp_path: Path) -> None:
    switch = SwitchableStore(store)
    sink = QueueSink(switch, tmp_path / "usage.journal", retry_interval_s=0.05)
    await sink.start()
    sink.record(event("req_1"))
    await eventually(lambda: store.count() == 1, "written")
    assert sink.backlog_bytes == 0
    switch.down = True
    sink.record(event("req_2"))
    await eventually(lambda: sink.backlog_bytes > 0, "backlog reported while the store is down")
    switch.down = False
    await eventually(lambda: sink.backlog_bytes == 0, "backlog cleared")
    await sink.close()


async def test_a_flush_writes_and_retires_written_segments_in_one_thread_trip(
    store: SqlStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each trip to a worker thread hands it the interpreter lock (a stall of the loop
    under full load): a flush makes one, and the segments it completes are gone after it
    while events recorded later stay journaled."""
    from gateway.metering import sink as sink_module

    trips: list[str] = []
    real_to_thread = asyncio.to_thread

    async def counting_to_thread(func: object, /, *args: object) -> object:
        trips.append(getattr(func, "__name__", repr(func)))
        return await real_to_thread(func, *args)  # type: ignore[arg-type]

    sink = QueueSink(store, tmp_path / "usage.journal", segment_bytes=1, flush_interval_s=0.05)
    await sink.start()
    await eventually(lambda: sink._task is not None and sink.healthy, "the writer started")
    await asyncio.sleep(0.1)
    monkeypatch.setattr(sink_module.asyncio, "to_thread", counting_to_thread)
    for i in range(20):
        sink.record(event(f"req_{i}"))
    await eventually(lambda: store.count() == 20, "all 20 rows written")
    await eventually(lambda: sink.journal.closed() == [], "the written segments deleted")
    assert trips and set(trips) == {"_write_and_retire"}, trips
    monkeypatch.undo()
    sink.record(event("req_late"))
    assert b"req_late" in sink.journal.segment(sink.journal.current).read_bytes()  # journaled, not retired
    await sink.close()
    assert store.count() == 21
