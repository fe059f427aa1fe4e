"""Sinks for usage events. `QueueSink` never blocks a request on the database: `record`
appends the event to the local journal (one small write) and queues it; a background
writer inserts queued events in batches and deletes journal segments once they are in
the ledger. When the database fails, the writer stops trying per batch, leaves the
events in the journal, and every `retry_interval_s` replays the journal (idempotently,
by request id) until the database is back. Start and close replay whatever is left."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Protocol, runtime_checkable

from gateway.metering.events import UsageEvent
from gateway.metering.journal import Journal, JournalBusy, encode, orphan_slots
from gateway.metering.sql import SqlStore

log = logging.getLogger("corral.metering")

#: (journal segment or None, the event, its journal line)
_Item = tuple[int | None, UsageEvent, bytes]


class UsageSink(Protocol):
    """What the runtime holds: where finished requests' usage goes."""

    def record(self, event: UsageEvent) -> None: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    @property
    def depth(self) -> int:
        """Events queued, not yet in the ledger."""

    @property
    def backlog_bytes(self) -> int:
        """Bytes of journal waiting to be replayed into the ledger."""

    @property
    def ledger(self) -> SqlStore | None:
        """The SQL ledger behind the sink, when there is one (keys and budgets read it)."""


class EventStore(Protocol):
    def ensure_schema(self) -> None:
        """Migrate the store to the current schema (on start; raises while it is unreachable)."""

    def write(self, events: list[UsageEvent]) -> None:
        """Persist a batch (idempotent by request id). Blocking: called from a worker thread."""

    def close(self) -> None:
        """Release connections (and any writer process); called once, after the last write."""


@runtime_checkable
class LineStore(EventStore, Protocol):
    """A store that can take events as the journal's own lines (no second encoding)."""

    def write_lines(self, lines: list[bytes]) -> None: ...


class MemorySink:
    """Keeps events in a list (tests and the simulator)."""

    def __init__(self) -> None:
        self.events: list[UsageEvent] = []

    def record(self, event: UsageEvent) -> None:
        self.events.append(event)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    depth = 0
    backlog_bytes = 0
    ledger = None


class QueueSink:
    def __init__(
        self,
        store: EventStore,
        journal_path: Path | Journal,
        *,
        max_queue: int = 10_000,
        batch_size: int = 500,
        retry_interval_s: float = 2.0,
        flush_interval_s: float = 0.25,
        segment_bytes: int = 1 << 20,
    ) -> None:
        self.store = store
        self.journal = journal_path if isinstance(journal_path, Journal) else Journal(journal_path)
        self.batch_size = batch_size
        self.retry_interval_s = retry_interval_s
        self.flush_interval_s = flush_interval_s
        self.segment_bytes = segment_bytes
        self.healthy = True
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(max_queue)
        #: Segments holding events that are not (or no longer) in the queue: replay them from disk.
        self._dirty: set[int] = set()
        self._task: asyncio.Task[None] | None = None
        self._next_retry = 0.0

    @property
    def ledger(self) -> SqlStore | None:
        return self.store if isinstance(self.store, SqlStore) else None

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    @property
    def backlog_bytes(self) -> int:
        """Journal bytes whose events may not be in the ledger yet: 0 while the writer keeps
        up (the open segment then only repeats what is already written)."""
        if self.healthy and not self._dirty:
            return 0
        return self.journal.total_bytes()

    def record(self, event: UsageEvent) -> None:
        segment: int | None
        line = encode(event)
        try:
            segment = self.journal.append_encoded(line + b"\n")
        except OSError:
            log.exception("usage journal write failed; event %s is only in memory", event.request_id)
            segment = None
        try:
            self._queue.put_nowait((segment, event, line))
        except asyncio.QueueFull:
            if segment is None:
                log.error("usage queue full and journal failing: event %s lost", event.request_id)
                return
            self._dirty.add(segment)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="corral-usage-writer")

    async def close(self) -> None:
        """Stop the writer, then put everything still queued or journaled into the ledger."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        unjournaled = [event for segment, event, _ in self._take_all() if segment is None]
        try:
            if unjournaled:
                await asyncio.to_thread(self.store.write, unjournaled)
        except Exception:
            log.exception("ledger unreachable at shutdown: %d events not journaled are lost", len(unjournaled))
        self.journal.rotate()
        await asyncio.to_thread(self._replay)
        self.journal.close()
        await asyncio.to_thread(self.store.close)

    def _take_all(self) -> list[_Item]:
        items: list[_Item] = []
        while not self._queue.empty():
            items.append(self._queue.get_nowait())
        return items

    async def _run(self) -> None:
        self.journal.rotate()
        self.healthy = await asyncio.to_thread(self._prepare)
        while True:
            batch = await self._next_batch()
            if batch and self.healthy:
                await self._flush(batch)
            elif batch:
                self._dirty.update(segment for segment, _, _ in batch if segment is not None)
            if not self.healthy and time.monotonic() >= self._next_retry:
                self.journal.rotate()
                self.healthy = await asyncio.to_thread(self._replay)
                self._next_retry = time.monotonic() + self.retry_interval_s

    async def _next_batch(self) -> list[_Item]:
        timeout = None if self.healthy else self.retry_interval_s
        try:
            first = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return []
        # Let a batch gather: one write per interval instead of one per request keeps the
        # writer thread (and its share of the GIL) off the request path under load. The
        # journal already holds every event, so waiting costs no durability.
        if self.healthy and self.flush_interval_s > 0 and self._queue.qsize() < self.batch_size:
            await asyncio.sleep(self.flush_interval_s)
        batch = [first]
        while len(batch) < self.batch_size and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    async def _flush(self, batch: list[_Item]) -> None:
        """Write `batch`, then delete the journal segments it completes, in one trip to a
        worker thread: each trip is a hand-over of the interpreter lock to a thread that
        must first be scheduled, which under full load stalled the event loop for
        milliseconds at a time (two trips per flush before)."""
        if self.journal.size() >= self.segment_bytes:
            self.journal.rotate()
        # With nothing queued behind it, this batch holds every event of the closed
        # segments (later events go to the open one); else only those up to its last.
        done_below = self.journal.current if self._queue.empty() else (batch[-1][0] or 0)
        try:
            await asyncio.to_thread(self._write_and_retire, batch, done_below)
        except Exception as exc:
            log.error("ledger write failed (%s); journaling until the database is back", type(exc).__name__)
            self._dirty.update(segment for segment, _, _ in batch if segment is not None)
            self.healthy = False
            self._next_retry = time.monotonic() + self.retry_interval_s

    def _write_and_retire(self, batch: list[_Item], done_below: int) -> None:
        if isinstance(self.store, LineStore):
            self.store.write_lines([line for _, _, line in batch])
        else:
            self.store.write([event for _, event, _ in batch])
        try:
            self._retire(done_below)
        except OSError as exc:  # the events are in the ledger; the segments go at a later flush
            log.warning("could not delete written journal segments (%s); will retry", type(exc).__name__)

    def _retire(self, below: int) -> None:
        """Delete closed segments below `below` whose events are all in the ledger."""
        for number in self.journal.closed():
            if number >= below:
                break
            if number in self._dirty and not self._replay_one(number):
                self.healthy = False
                return
            self.journal.remove(number)

    def _replay_one(self, number: int) -> bool:
        events = self.journal.read(number)
        try:
            for start in range(0, len(events), self.batch_size):
                self.store.write(events[start : start + self.batch_size])
        except Exception as exc:
            log.warning("journal replay failed (%s); will retry", type(exc).__name__)
            return False
        if events:
            log.info("replayed %d journaled usage events from segment %d", len(events), number)
        self._dirty.discard(number)
        self.journal.remove(number)
        return True

    def _prepare(self) -> bool:
        """Migrate the ledger and replay what an earlier run left, in this slot and in slots no
        worker of this run will claim; False if the database is down."""
        try:
            self.store.ensure_schema()
        except Exception as exc:
            log.warning("ledger unavailable at start (%s); journaling until it is back", type(exc).__name__)
            return False
        return self._replay()

    def _replay_orphan(self, path: Path) -> bool:
        """Put a dead worker's slot into the ledger and delete its segments (skipped while a
        live process holds it: that process replays it itself)."""
        try:
            orphan = Journal(path)
        except JournalBusy:
            return True
        try:
            for number in orphan.closed():
                events = orphan.read(number)
                for start in range(0, len(events), self.batch_size):
                    self.store.write(events[start : start + self.batch_size])
                if events:
                    log.info("replayed %d usage events left in %s by a worker that is gone", len(events), path.name)
                orphan.remove(number)
        except Exception as exc:
            log.warning("replay of %s failed (%s); will retry", path.name, type(exc).__name__)
            return False
        finally:
            orphan.close()
        return True

    def _replay(self) -> bool:
        """Replay every closed segment, oldest first, then the slots of workers that are gone;
        False at the first failure."""
        if not all(self._replay_one(number) for number in self.journal.closed()):
            return False
        return all(self._replay_orphan(path) for path in orphan_slots(self.journal.base, self.journal.slots))
