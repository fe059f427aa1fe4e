"""The local append-only journal: every usage event is written here (one JSON line, one
`write` on an O_APPEND descriptor) before the client is answered, so a killed process
loses nothing; segments whose events are all in the ledger are then deleted.

Files: `<path>.<n>.wal` segments (the highest open for appending), `<path>.lock` held
with flock so two processes never share a journal. A file at `<path>` itself (the older
single-file journal) is replayed like a closed segment. Several worker processes of one
gateway each claim their own slot (`<path>`, `<path>-w1`, ...; see `claim_journal`).
Slots no worker of this run will claim (a gateway restarted with fewer workers) are
`orphan_slots`: the sink replays them at start.

Durability (`journal_durability`): "process" (default) survives a killed process — each
event is one write() into the kernel before the client is answered — but not an OS crash
or power loss. "fsync" adds group commit: a background thread fsyncs the open segment at
most every `journal_fsync_ms` when something was written since the last fsync, so one
fsync covers every event of its window, off the request's path; an OS crash then loses
at most that window (and a new segment's directory entry is fsynced before use).
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import threading
import time
from dataclasses import fields
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import orjson

from gateway.metering.events import AttemptRecord, UsageEvent

log = logging.getLogger("corral.metering")
LEGACY = -1
_EVENT_FIELDS = frozenset(f.name for f in fields(UsageEvent))
_ATTEMPT_FIELDS = frozenset(f.name for f in fields(AttemptRecord))


Durability = Literal["process", "fsync"]


class JournalBusy(RuntimeError):
    """Another process holds this journal."""


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value).__name__)


def encode(event: UsageEvent) -> bytes:
    """One JSON line; orjson serialises the (slotted) dataclasses natively, in C."""
    return orjson.dumps(event, default=_default)


def _attempt(raw: dict[str, Any]) -> AttemptRecord:
    known = {k: v for k, v in raw.items() if k in _ATTEMPT_FIELDS}
    known["cost_usd"] = Decimal(str(known.get("cost_usd", "0")))
    return AttemptRecord(**known)


def decode(line: bytes) -> UsageEvent:
    raw = {k: v for k, v in orjson.loads(line).items() if k in _EVENT_FIELDS}
    raw["at"] = datetime.fromisoformat(raw["at"])
    raw["cost_usd"] = Decimal(raw["cost_usd"])
    raw["saved_usd"] = Decimal(str(raw.get("saved_usd", "0")))
    raw["attempts"] = tuple(_attempt(a) for a in raw.get("attempts", ()))
    return UsageEvent(**raw)


def read_events(path: Path) -> list[UsageEvent]:
    """The events of one file; a torn or corrupt line is logged and skipped."""
    events = []
    for number, line in enumerate(path.read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        try:
            events.append(decode(line))
        except (ValueError, TypeError, KeyError) as exc:
            log.error("journal %s line %d unreadable (%s); skipped", path.name, number, exc)
    return events


class Journal:
    def __init__(self, path: Path, durability: Durability = "process", fsync_ms: int = 10) -> None:
        self.path = path
        #: The configured journal path and how many worker slots this run uses (claim_journal).
        self.base = path
        self.slots = 1
        self.durability: Durability = durability
        self.fsync_s = fsync_ms / 1000
        #: fsync calls made (group commit makes far fewer than appends).
        self.fsyncs = 0
        self._lock = threading.Lock()
        self._lock_fd = self._acquire(path)
        self._fd: int | None = None
        self.current = max(self._ids(), default=0) + 1
        #: Bytes appended / bytes known fsynced, in this process's lifetime.
        self._written = 0
        self._synced = 0
        self._wake = threading.Event()
        self._stopping = False
        self._syncer: threading.Thread | None = None
        if durability == "fsync":
            self._syncer = threading.Thread(target=self._sync_forever, name="corral-journal-fsync", daemon=True)
            self._syncer.start()

    def _sync_forever(self) -> None:
        """Group commit: wait for a write, let the window fill, fsync once for all of it."""
        while not self._stopping:
            self._wake.wait()
            self._wake.clear()
            if self._stopping:
                break
            self.sync()
            time.sleep(self.fsync_s)

    def sync(self) -> None:
        """fsync the open segment if anything was written since the last fsync."""
        with self._lock:
            if self._fd is None or self._written == self._synced:
                return
            # A duplicate descriptor: the fsync runs without the lock (appends go on), and
            # stays valid if the segment is rotated meanwhile.
            fd, upto = os.dup(self._fd), self._written
        try:
            os.fsync(fd)
        except OSError as exc:
            log.error("usage journal fsync failed (%s)", exc)
            return
        finally:
            os.close(fd)
        with self._lock:
            self.fsyncs += 1
            self._synced = max(self._synced, upto)

    @property
    def unsynced_bytes(self) -> int:
        return self._written - self._synced

    @staticmethod
    def _acquire(path: Path) -> int:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{path}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise JournalBusy(f"usage journal {path} is in use by another process") from exc
        return fd

    def segment(self, number: int) -> Path:
        return self.path if number == LEGACY else self.path.with_name(f"{self.path.name}.{number:08d}.wal")

    def _ids(self) -> list[int]:
        prefix = f"{self.path.name}."
        found = []
        for item in self.path.parent.glob(f"{self.path.name}.*.wal"):
            middle = item.name[len(prefix) : -len(".wal")]
            if middle.isdigit():
                found.append(int(middle))
        return sorted(found)

    def append(self, events: list[UsageEvent]) -> int:
        """Append events to the open segment; returns its number."""
        return self.append_encoded(b"".join(encode(e) + b"\n" for e in events))

    def append_encoded(self, data: bytes) -> int:
        """Append already encoded lines (each ending in a newline) in one write."""
        with self._lock:
            if self._fd is None:
                self._fd = os.open(self.segment(self.current), os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
                if self.durability == "fsync":
                    _fsync_directory(self.path.parent)
            os.write(self._fd, data)
            self._written += len(data)
        if self._syncer is not None:
            self._wake.set()
        return self.current

    def size(self) -> int:
        with self._lock:
            return os.fstat(self._fd).st_size if self._fd is not None else 0

    def total_bytes(self) -> int:
        """Bytes in every segment still on disk, open or closed."""
        numbers = [*self.closed(), self.current]
        return sum(path.stat().st_size for n in numbers if (path := self.segment(n)).exists())

    def rotate(self) -> None:
        """Close the open segment (fsynced first in "fsync" mode); the next append starts a new one."""
        if self.durability == "fsync":
            self.sync()
        with self._lock:
            if self._fd is None:
                return
            os.close(self._fd)
            self._fd = None
            if self.durability == "fsync":
                self._synced = self._written
            self.current += 1

    def closed(self) -> list[int]:
        """Segments no longer appended to, oldest first."""
        with self._lock:
            ids = [n for n in self._ids() if n < self.current]
        return ([LEGACY] if self.path.exists() else []) + ids

    def read(self, number: int) -> list[UsageEvent]:
        path = self.segment(number)
        return read_events(path) if path.exists() else []

    def remove(self, number: int) -> None:
        self.segment(number).unlink(missing_ok=True)

    def close(self) -> None:
        """Close the open segment and release the lock (the files stay)."""
        if self._syncer is not None:
            self._stopping = True
            self._wake.set()
            self._syncer.join(5)
            self._syncer = None
        self.rotate()
        with self._lock:
            if self._lock_fd >= 0:
                os.close(self._lock_fd)
                self._lock_fd = -1


def slot_path(path: Path, slot: int) -> Path:
    """Slot 0 is the configured path itself, so a single-process gateway is unchanged."""
    return path if slot == 0 else path.with_name(f"{path.name}-w{slot}")


def _fsync_directory(directory: Path) -> None:
    """Make a new file's directory entry durable (a power loss could otherwise drop the file)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def claim_journal(path: Path, slots: int, durability: Durability = "process", fsync_ms: int = 10) -> Journal:
    """The first of `slots` journals no other process holds. Worker processes of one gateway
    start together and each takes a free slot; a worker that replaces a dead one takes the
    slot it left, and replays what is still in it."""
    for slot in range(max(slots, 1)):
        try:
            journal = Journal(slot_path(path, slot), durability, fsync_ms)
        except JournalBusy:
            continue
        journal.base, journal.slots = path, max(slots, 1)
        return journal
    raise JournalBusy(f"all {slots} usage journal slots of {path} are in use by other processes")


def orphan_slots(path: Path, slots: int) -> list[Path]:
    """Slot paths with files on disk that no worker of this run will claim (slot >= `slots`):
    left by workers of an earlier run with more of them."""
    pattern = re.compile(re.escape(path.name) + r"-w(\d+)(?:\.|$)")
    found = set()
    for item in path.parent.glob(f"{path.name}-w*"):
        match = pattern.match(item.name)
        if match and int(match.group(1)) >= max(slots, 1):
            found.add(int(match.group(1)))
    return [slot_path(path, slot) for slot in sorted(found)]
