"""The local append-only journal: every usage event is written here (one JSON line, one
`write` on an O_APPEND descriptor) before the client is answered, so a killed process
loses nothing; segments whose events are all in the ledger are then deleted.

Files: `<path>.<n>.wal` segments (the highest open for appending), `<path>.lock` held
with flock so two processes never share a journal. A file at `<path>` itself (the older
single-file journal) is replayed like a closed segment. Several worker processes of one
gateway each claim their own slot (`<path>`, `<path>-w1`, ...; see `claim_journal`).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from dataclasses import fields
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from gateway.metering.events import AttemptRecord, UsageEvent

log = logging.getLogger("corral.metering")
LEGACY = -1
_EVENT_FIELDS = frozenset(f.name for f in fields(UsageEvent))
_ATTEMPT_FIELDS = frozenset(f.name for f in fields(AttemptRecord))


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
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._lock_fd = self._acquire(path)
        self._fd: int | None = None
        self.current = max(self._ids(), default=0) + 1

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
            os.write(self._fd, data)
            return self.current

    def size(self) -> int:
        with self._lock:
            return os.fstat(self._fd).st_size if self._fd is not None else 0

    def total_bytes(self) -> int:
        """Bytes in every segment still on disk, open or closed."""
        numbers = [*self.closed(), self.current]
        return sum(path.stat().st_size for n in numbers if (path := self.segment(n)).exists())

    def rotate(self) -> None:
        """Close the open segment; the next append starts a new one."""
        with self._lock:
            if self._fd is None:
                return
            os.close(self._fd)
            self._fd = None
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
        self.rotate()
        with self._lock:
            if self._lock_fd >= 0:
                os.close(self._lock_fd)
                self._lock_fd = -1


def slot_path(path: Path, slot: int) -> Path:
    """Slot 0 is the configured path itself, so a single-process gateway is unchanged."""
    return path if slot == 0 else path.with_name(f"{path.name}-w{slot}")


def claim_journal(path: Path, slots: int) -> Journal:
    """The first of `slots` journals no other process holds. Worker processes of one gateway
    start together and each takes a free slot; a worker that replaces a dead one takes the
    slot it left, and replays what is still in it."""
    for slot in range(max(slots, 1)):
        try:
            return Journal(slot_path(path, slot))
        except JournalBusy:
            continue
    raise JournalBusy(f"all {slots} usage journal slots of {path} are in use by other processes")
