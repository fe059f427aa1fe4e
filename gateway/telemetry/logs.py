"""Structured logs: JSON lines, and one access line per request (from usage events, off the
request path). No prompt or completion text and no secret is ever part of a log line."""

from __future__ import annotations

import logging
from collections import deque
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.metering.events import UsageEvent

access_log = logging.getLogger("corral.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any `extra` fields."""

    _standard = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update({k: v for k, v in vars(record).items() if k not in self._standard})
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message`, then the same `extra` fields a JSON line carries, as
    `key=value` pairs (so text access lines keep request id, provider, latency, cost …)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = {k: v for k, v in vars(record).items() if k not in JsonFormatter._standard}
        if not fields:
            return line
        return line + " " + " ".join(f"{k}={_text_value(v)}" for k, v in fields.items())


def _text_value(value: Any) -> str:
    text = "-" if value is None else str(value)
    return text if text and not any(c.isspace() or c in '"=' for c in text) else orjson.dumps(text).decode()


class CorralHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `configure_logging` installs; AccessLog recognises it to write JSON access
    lines in batches (one write per slice instead of a record, a lock and a flush per line)."""


def configure_logging(level: str, fmt: str) -> None:
    handler = CorralHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def access_fields(e: UsageEvent) -> dict[str, Any]:
    return {
        "request_id": e.request_id,
        "model": e.model,
        "provider": e.provider or None,
        "model_id": e.model_id or None,
        "status": e.status,
        "stream": e.stream,
        "latency_ms": round(e.latency_ms, 2),
        "ttft_ms": round(e.ttft_ms, 2) if e.ttft_ms is not None else None,
        "prompt_tokens": e.prompt_tokens,
        "completion_tokens": e.completion_tokens,
        "usage_estimated": e.usage_estimated,
        "cost_usd": str(e.cost_usd),
        "attempts": len(e.attempts),
        "tool_validation": e.tool_validation,
        "key_id": e.api_key_id,
        "team": e.team,
    }


class AccessLog:
    """Collects events on the request path (an append) and logs them when drained.

    With the gateway's own JSON handler in place (the default), a drained slice is formatted
    with orjson and written at once, the same line JsonFormatter would give each record:
    through `logging`, one access line cost ~20-50 µs of the loop (a LogRecord, a lock, a
    formatter walking the record, a write and a flush each), a measurable share of a worker
    at thousands of requests a second. Any other logging set-up gets one record per event."""

    def __init__(self) -> None:
        self._pending: deque[UsageEvent] = deque()

    def record(self, event: UsageEvent) -> None:
        if access_log.isEnabledFor(logging.INFO):
            self._pending.append(event)

    def drain(self, limit: int | None = None) -> bool:
        """Log up to `limit` pending events (all without one); True when some are left."""
        count = len(self._pending) if limit is None else min(limit, len(self._pending))
        handler = _batch_handler() if count else None
        if handler is None:
            for _ in range(count):
                access_log.info("request", extra=access_fields(self._pending.popleft()))
            return bool(self._pending)
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        lines = b"".join(
            orjson.dumps(
                {"ts": stamp, "level": "info", "logger": access_log.name, "msg": "request", **access_fields(event)},
                option=orjson.OPT_APPEND_NEWLINE,
            )
            for event in (self._pending.popleft() for _ in range(count))
        )
        handler.acquire()
        try:
            handler.stream.write(lines.decode())
            handler.flush()
        finally:
            handler.release()
        return bool(self._pending)


def _batch_handler() -> CorralHandler | None:
    """The one handler an access line would reach, when it is ours and writes JSON."""
    if access_log.handlers or not access_log.propagate or access_log.filters:
        return None
    if not access_log.isEnabledFor(logging.INFO):
        return None
    handlers = logging.getLogger().handlers
    if len(handlers) != 1 or type(handlers[0]) is not CorralHandler:
        return None
    handler = handlers[0]
    if type(handler.formatter) is not JsonFormatter or handler.filters or handler.level > logging.INFO:
        return None
    return handler
