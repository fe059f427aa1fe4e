"""Usage events for tests, with hand-checkable figures."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from gateway.metering.events import AttemptRecord, UsageEvent

DAY1 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def event(request_id: str, **changes: Any) -> UsageEvent:
    """A served, non-streamed Scout request on groq: 1,000 prompt / 200 completion tokens."""
    fields: dict[str, Any] = {
        "request_id": request_id,
        "at": DAY1,
        "model": "llama-4-scout",
        "provider": "groq",
        "model_id": "meta-llama/llama-4-scout-17b-16e-instruct",
        "status": "ok",
        "prompt_tokens": 1000,
        "completion_tokens": 200,
        "cached_tokens": 0,
        "usage_estimated": False,
        "cost_usd": Decimal("0.000178"),
        "latency_ms": 120.0,
        "ttft_ms": None,
        "stream": False,
        "tags": {"team": "search", "project": "web"},
    }
    fields.update(changes)
    if "attempts" not in changes:
        fields["attempts"] = (AttemptRecord(fields["provider"], fields["model_id"], None, 200, 100.0),)
    return UsageEvent(**fields)


def failed(provider: str = "together", **changes: Any) -> AttemptRecord:
    values: dict[str, Any] = {
        "provider": provider,
        "model_id": "x",
        "error_kind": "timeout",
        "status": None,
        "latency_ms": 50.0,
    }
    values.update(changes)
    return AttemptRecord(**values)
