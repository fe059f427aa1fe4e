"""An append-only JSON-lines file of usage events that could not reach the ledger."""

from __future__ import annotations

import threading
from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from gateway.metering.events import AttemptRecord, UsageEvent


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value).__name__)


def encode(event: UsageEvent) -> bytes:
    return orjson.dumps(asdict(event), default=_default)


def decode(line: bytes) -> UsageEvent:
    raw = orjson.loads(line)
    raw["at"] = datetime.fromisoformat(raw["at"])
    raw["cost_usd"] = Decimal(raw["cost_usd"])
    raw["attempts"] = tuple(AttemptRecord(**a) for a in raw["attempts"])
    return UsageEvent(**raw)


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def append(self, events: list[UsageEvent]) -> None:
        data = b"".join(encode(e) + b"\n" for e in events)
        with self._lock, self.path.open("ab") as handle:
            handle.write(data)

    def read(self) -> list[UsageEvent]:
        with self._lock:
            if not self.path.exists():
                return []
            lines = self.path.read_bytes().splitlines()
        return [decode(line) for line in lines if line.strip()]

    def clear(self) -> None:
        with self._lock:
            self.path.unlink(missing_ok=True)
