"""One usage event per client request that reached a backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    provider: str
    model_id: str
    #: None when the attempt succeeded, else the error kind (rate_limited, timeout, ...).
    error_kind: str | None
    status: int | None
    latency_ms: float
    message: str = ""


@dataclass(frozen=True, slots=True)
class UsageEvent:
    request_id: str
    at: datetime
    model: str
    provider: str
    model_id: str
    status: str
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    usage_estimated: bool
    cost_usd: Decimal
    latency_ms: float
    ttft_ms: float | None
    stream: bool
    attempts: tuple[AttemptRecord, ...] = ()
    api_key_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
