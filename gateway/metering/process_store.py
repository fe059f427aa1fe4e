"""Ledger inserts in a child process.

The usage writer batches events from a worker thread, but building rows and running the
inserts is Python work that shares the serving process's GIL and core: under load it
cost the gateway about a sixth of its throughput. `ProcessStore` keeps every decision in
the gateway (queueing, journaling, retries, replay) and moves only the inserts into one
child process, `python -m gateway.metering.process_store`, started on the first write.

Protocol on the child's stdin/stdout: the parent sends a 4-byte big-endian length and
that many bytes of journal lines (the journal's own JSON encoding); the child answers
one line, `ok` or `err <ErrorType>` (never the message: a connection error can hold the
database URL). The URL reaches the child in its environment, not its command line. If
the child dies, the batch fails like any database error (the journal keeps the events,
the sink replays them) and the next write starts a new child. When the parent goes
away the child sees end-of-file and exits.

The child runs at Linux's SCHED_IDLE priority by default: its inserts come in bursts (a
batch of 500 events is ~30 ms of CPU), and on a small machine those bursts were behind
most of the gateway's p99 at one connection in `make bench` (4.0-4.4 ms against 1.9-3.7
with the child idle-scheduled, same runs alternated). The journal already holds every
event, so a writer that waits for CPU time delays only the ledger, never a request.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Mapping
from typing import IO

from gateway.metering.events import UsageEvent
from gateway.metering.journal import decode, encode
from gateway.metering.sql import Pause, SqlStore, paced

log = logging.getLogger("corral.metering")
URL_ENV = "CORRAL_LEDGER_WRITER_URL"
TIMEOUT_ENV = "CORRAL_LEDGER_WRITER_CONNECT_TIMEOUT_S"
PRIORITY_ENV = "CORRAL_LEDGER_WRITER_SCHED"
_LENGTH = struct.Struct(">I")


class LedgerWriteError(RuntimeError):
    """A batch the child could not insert; carries only the error's type name."""


class ProcessStore(SqlStore):
    """Usage:
    store = ProcessStore("postgresql://corral@db/corral")
    store.write(events)      # blocking, from the sink's worker thread; runs in the child
    store.close()            # stops the child
    """

    def __init__(self, url: str, *, connect_timeout_s: int = 5, priority: str = "idle") -> None:
        super().__init__(url, connect_timeout_s=connect_timeout_s)
        self._url = url
        self._priority = priority
        self._connect_timeout_s = connect_timeout_s
        self._child: subprocess.Popen[bytes] | None = None
        self._child_lock = threading.Lock()

    @property
    def child_pid(self) -> int | None:
        child = self._child
        return child.pid if child is not None and child.poll() is None else None

    def _running_child(self) -> subprocess.Popen[bytes]:
        if self._child is None or self._child.poll() is not None:
            env = {
                **os.environ,
                URL_ENV: self._url,
                TIMEOUT_ENV: str(self._connect_timeout_s),
                PRIORITY_ENV: self._priority,
            }
            self._child = subprocess.Popen(
                [sys.executable, "-m", "gateway.metering.process_store"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
            )
        return self._child

    def write(self, events: list[UsageEvent]) -> None:
        self.write_lines([encode(event) for event in events])

    def write_lines(self, lines: list[bytes]) -> None:
        """Insert events given as journal lines (the sink hands over the lines it journaled)."""
        if not lines:
            return
        self.ensure_schema()  # migrations run here, once, not in the child
        payload = b"\n".join(lines)
        with self._child_lock:
            child = self._running_child()
            assert child.stdin is not None and child.stdout is not None
            try:
                child.stdin.write(_LENGTH.pack(len(payload)) + payload)
                child.stdin.flush()
                answer = child.stdout.readline()
            except (BrokenPipeError, ValueError):
                answer = b""
            if not answer:
                self._stop_child()
                log.error("ledger writer process exited; a new one starts with the next batch")
                raise LedgerWriteError("WriterProcessExited")
        status, _, error = answer.strip().partition(b" ")
        if status != b"ok":
            raise LedgerWriteError(error.decode(errors="replace") or "UnknownError")

    def _stop_child(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        if child.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                child.stdin.close()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()

    def close(self) -> None:
        with self._child_lock:
            self._stop_child()
        super().close()


def _read_exactly(stream: IO[bytes], size: int) -> bytes | None:
    data = stream.read(size)
    return data if data is not None and len(data) == size else None


def serve(stdin: IO[bytes], stdout: IO[bytes], store: SqlStore) -> None:
    """The child's loop: one batch in, one answer out, until end-of-file."""
    while (header := _read_exactly(stdin, _LENGTH.size)) is not None:
        payload = _read_exactly(stdin, _LENGTH.unpack(header)[0])
        if payload is None:
            return
        try:
            store.write([decode(line) for line in paced(payload.split(b"\n"), store.pause)])
            answer = b"ok\n"
        except Exception as exc:
            answer = f"err {type(exc).__name__}\n".encode()
        stdout.write(answer)
        stdout.flush()


def child_store(env: Mapping[str, str]) -> SqlStore:
    """The child's store: the parent's URL and timeout, its work paced by `_yield_cpu`."""
    return SqlStore(env[URL_ENV], connect_timeout_s=int(env.get(TIMEOUT_ENV, "5")), pause=_yield_cpu())


def _yield_cpu() -> Pause:
    """Between slices of a batch, give the core to any task waiting for it. Linux does not
    always preempt a SCHED_IDLE task when a normal one wakes on its core: measured here, a
    woken task sometimes waited for the scheduler tick (up to 4 ms; `perf sched timehist`
    caught the fake upstream waiting 3.6 ms behind this writer), which was most of the
    gateway's p99 at one connection in `make bench`. A yield costs a syscall when no task
    waits."""
    return os.sched_yield if hasattr(os, "sched_yield") else None


def main() -> None:
    # Signals aimed at the whole process group (Ctrl-C, a group SIGTERM) are for the
    # parent, which drains the queue through this child and then closes its stdin.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if os.environ.get(PRIORITY_ENV, "idle") == "idle" and hasattr(os, "SCHED_IDLE"):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    store = child_store(os.environ)
    # Modules and the engine live as long as the child: out of the collector's walks, a full
    # collection takes ~0.5 ms instead of ~40 ms of CPU that no pause could split.
    gc.collect()
    gc.freeze()
    try:
        serve(sys.stdin.buffer, sys.stdout.buffer, store)
    finally:
        store.close()


if __name__ == "__main__":
    main()
