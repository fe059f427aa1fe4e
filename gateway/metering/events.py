"""What the hot path hands to metering: one `UsageEvent` per client request that reached
a backend, with one `AttemptRecord` per upstream attempt.

The event's tokens and cost are those of the attempt that answered (the last one). A cache
hit is an event of its own kind (status "cache_hit"): no attempts, no tokens, $0, with
`saved_usd` (what the original answer cost) and `cache_of` (the original request id). An
`AttemptRecord` carries tokens and cost only for *other* attempts the provider billed
(say a stream that failed half-way, or an answer whose tool calls were re-asked); the
ledger's request row stores the sum of all of them.
"""

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
    #: Usage the provider billed for this attempt when it is not the one that answered.
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    usage_estimated: bool = False
    cost_usd: Decimal = Decimal(0)
    #: This attempt re-asked the model after its tool calls failed validation.
    reask: bool = False
    #: Why its tool calls were invalid (unknown_tool, invalid_json, schema_violation, reply_rule,
    #: validation_budget: the check was stopped by its CPU budget).
    failure_kinds: tuple[str, ...] = ()
    #: In a hedged request: "won" (the attempt that answered) or "lost" (cancelled, or
    #: answered second; its cost is what hedging added). None when there was no race.
    hedge: str | None = None


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
    #: valid, repaired, reasked, failed or not_applicable; None when tools were not involved.
    tool_validation: str | None = None
    #: For a correction: the request id of the row this one adjusts (its figures are deltas).
    corrects: str | None = None
    note: str = ""
    #: A cache hit (status "cache_hit"): what the original answer cost, and its request id.
    saved_usd: Decimal = Decimal(0)
    cache_of: str | None = None

    @property
    def team(self) -> str | None:
        return self.tags.get("team")

    @property
    def project(self) -> str | None:
        return self.tags.get("project")
