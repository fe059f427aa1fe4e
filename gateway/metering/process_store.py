"""Ledger inserts in a child process.

The usage writer batches events from a worker thread, but building rows and running the
inserts is Python work that shares the serving process's GIL and core: under load it
cost the gateway about a sixth of its throughput. `ProcessStore` keeps every decision in
the gateway (queueing, journaling, retries, replay) and moves only the inserts into one
child process. Events cross as the journal's own JSON lines. Reads (reports, API keys,
budgets) and migrations stay on the parent's engine.

If the child dies, the batch fails like any database error (the journal keeps the events
and the sink replays them) and the next write starts a new child.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from gateway.metering.events import UsageEvent
from gateway.metering.journal import decode, encode
from gateway.metering.sql import SqlStore

log = logging.getLogger("corral.metering")


class LedgerWriteError(RuntimeError):
    """A batch the child could not insert; carries only the error's type name (the
    message of a connection error can hold the database URL)."""


#: The child's own store, set by its initialiser (one per child process).
_child: dict[str, SqlStore] = {}


def _start_child(url: str, connect_timeout_s: int) -> None:
    """Child initialiser: one engine for the child's life. Signals aimed at the whole
    process group (Ctrl-C, a group SIGTERM) are for the parent, which drains and then
    shuts the child down itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _child["store"] = SqlStore(url, connect_timeout_s=connect_timeout_s)


def _write_in_child(lines: list[bytes]) -> int:
    try:
        _child["store"].write([decode(line) for line in lines])
    except Exception as exc:
        raise LedgerWriteError(type(exc).__name__) from None
    return len(lines)


class ProcessStore(SqlStore):
    """Usage:
    store = ProcessStore("postgresql://corral@db/corral")
    store.write(events)      # blocking, from the sink's worker thread; runs in the child
    store.close()            # stops the child
    """

    def __init__(self, url: str, *, connect_timeout_s: int = 5) -> None:
        super().__init__(url, connect_timeout_s=connect_timeout_s)
        self._url = url
        self._connect_timeout_s = connect_timeout_s
        self._executor: ProcessPoolExecutor | None = None
        self._executor_lock = threading.Lock()

    def _pool(self) -> ProcessPoolExecutor:
        with self._executor_lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=1,
                    # spawn: the gateway has threads and an event loop; forking those is unsafe.
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_child,
                    initargs=(self._url, self._connect_timeout_s),
                )
            return self._executor

    def write(self, events: list[UsageEvent]) -> None:
        if not events:
            return
        self.ensure_schema()  # migrations run here, once, not in the child
        lines = [encode(event) for event in events]
        try:
            self._pool().submit(_write_in_child, lines).result()
        except BrokenProcessPool:
            log.error("ledger writer process died; starting a new one for the next batch")
            self._discard_pool()
            raise

    def _discard_pool(self) -> None:
        with self._executor_lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._executor_lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        super().close()
