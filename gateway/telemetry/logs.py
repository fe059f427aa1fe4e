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


def configure_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler()
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
    """Collects events on the request path (an append) and logs them when drained."""

    def __init__(self) -> None:
        self._pending: deque[UsageEvent] = deque()

    def record(self, event: UsageEvent) -> None:
        if access_log.isEnabledFor(logging.INFO):
            self._pending.append(event)

    def drain(self, limit: int | None = None) -> bool:
        """Log up to `limit` pending events (all without one); True when some are left."""
        for _ in range(len(self._pending) if limit is None else min(limit, len(self._pending))):
            event = self._pending.popleft()
            access_log.info("request", extra=access_fields(event))
        return bool(self._pending)
