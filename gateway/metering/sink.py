"""Sinks for usage events. `QueueSink` never blocks a request: events go to a bounded
in-process queue that a background writer drains in batches; if the queue is full or
the store fails, events are appended to a local journal file and replayed later."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Protocol

from gateway.metering.events import UsageEvent
from gateway.metering.journal import Journal

log = logging.getLogger("corral.metering")


class UsageSink(Protocol):
    def record(self, event: UsageEvent) -> None: ...


class EventStore(Protocol):
    def write(self, events: list[UsageEvent]) -> None:
        """Persist a batch (idempotent by request id). Blocking: called from a worker thread."""


class MemorySink:
    """Keeps events in a list (tests and the simulator)."""

    def __init__(self) -> None:
        self.events: list[UsageEvent] = []

    def record(self, event: UsageEvent) -> None:
        self.events.append(event)


class QueueSink:
    def __init__(
        self, store: EventStore, journal_path: Path, *, max_queue: int = 10_000, batch_size: int = 500
    ) -> None:
        self.store = store
        self.journal = Journal(journal_path)
        self.batch_size = batch_size
        self._queue: asyncio.Queue[UsageEvent] = asyncio.Queue(max_queue)
        self._task: asyncio.Task[None] | None = None

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def record(self, event: UsageEvent) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("usage queue full; journaling event %s", event.request_id)
            self.journal.append([event])

    async def start(self) -> None:
        await asyncio.to_thread(self._replay_journal)
        self._task = asyncio.create_task(self._run(), name="corral-usage-writer")

    async def close(self) -> None:
        """Drain everything queued, then stop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._flush(self._take_all())

    def _take_all(self) -> list[UsageEvent]:
        batch: list[UsageEvent] = []
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            while len(batch) < self.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._flush(batch)

    async def _flush(self, batch: list[UsageEvent]) -> None:
        if not batch:
            return
        try:
            await asyncio.to_thread(self.store.write, batch)
        except Exception:
            log.exception("ledger write failed; journaling %d events", len(batch))
            await asyncio.to_thread(self.journal.append, batch)

    def _replay_journal(self) -> None:
        events = self.journal.read()
        if not events:
            return
        self.store.write(events)
        self.journal.clear()
        log.info("replayed %d journaled usage events", len(events))
