"""Turn a `UsageEvent` into ledger rows (pure: no I/O, no clock except `recorded_at`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from gateway.metering.events import AttemptRecord, UsageEvent
from gateway.metering.money import quantize


@dataclass(frozen=True, slots=True)
class LedgerRows:
    request: dict[str, Any]
    attempts: list[dict[str, Any]]


def utc(at: datetime) -> datetime:
    """`at` as an aware UTC datetime (a naive one is taken to be UTC already)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _synthetic(event: UsageEvent) -> AttemptRecord:
    """The one attempt of an event that lists none (corrections, older producers)."""
    kind = "error" if event.status == "error" else None
    return AttemptRecord(event.provider, event.model_id, kind, None, event.latency_ms)


def _figures(event: UsageEvent, attempt: AttemptRecord, answered: bool) -> dict[str, Any]:
    """Tokens and cost of one attempt: the event's own for the attempt that answered."""
    source: UsageEvent | AttemptRecord = event if answered else attempt
    return {
        "prompt_tokens": source.prompt_tokens,
        "completion_tokens": source.completion_tokens,
        "cached_tokens": source.cached_tokens,
        "usage_estimated": source.usage_estimated,
        "cost_usd": quantize(source.cost_usd),
        "saved_usd": quantize(event.saved_usd if answered else Decimal(0)),
    }


def _outcome(event: UsageEvent, attempt: AttemptRecord, answered: bool) -> str:
    if event.status == "correction":
        return "correction"
    if answered:
        return event.status
    if attempt.hedge == "lost":
        return "cancelled"
    return "error" if attempt.error_kind else "ok"


def _attempt_rows(event: UsageEvent, common: dict[str, Any]) -> list[dict[str, Any]]:
    attempts = event.attempts or (_synthetic(event),)
    last = len(attempts) - 1
    rows = []
    for seq, attempt in enumerate(attempts):
        answered = seq == last and (bool(event.provider) or not event.attempts)
        rows.append(
            {
                **common,
                "seq": seq,
                "provider": attempt.provider,
                "model_id": attempt.model_id,
                "outcome": _outcome(event, attempt, answered),
                "status_code": attempt.status,
                "error_kind": attempt.error_kind,
                "latency_ms": attempt.latency_ms,
                "final": seq == last and event.status != "correction",
                "reask": attempt.reask,
                "hedge": attempt.hedge,
                **_figures(event, attempt, answered),
            }
        )
    return rows


def ledger_rows(event: UsageEvent, recorded_at: datetime | None = None) -> LedgerRows:
    at = utc(event.at)
    common = {
        "request_id": event.request_id,
        "at": at,
        "day": at.date(),
        "model": event.model,
        "api_key_id": event.api_key_id,
        "team": event.team,
        "project": event.project,
    }
    attempts = _attempt_rows(event, common)
    request = {
        **common,
        "recorded_at": recorded_at or datetime.now(UTC),
        "tags": dict(event.tags),
        "provider": event.provider,
        "model_id": event.model_id,
        "status": event.status,
        "stream": event.stream,
        "latency_ms": event.latency_ms,
        "ttft_ms": event.ttft_ms,
        "attempts": len(event.attempts),
        "tool_validation": event.tool_validation,
        "prompt_tokens": sum(a["prompt_tokens"] for a in attempts),
        "completion_tokens": sum(a["completion_tokens"] for a in attempts),
        "cached_tokens": sum(a["cached_tokens"] for a in attempts),
        "usage_estimated": any(a["usage_estimated"] for a in attempts),
        "cost_usd": sum((a["cost_usd"] for a in attempts), Decimal(0)),
        "corrects": event.corrects,
        "note": event.note[:500],
        "saved_usd": quantize(event.saved_usd),
        "cache_of": event.cache_of,
    }
    return LedgerRows(request, attempts)
