"""Counters for requests Corral's own checks refused: authentication (401/403) and the
keys' limits (429 for rpm and tpm, 402 for budgets). Counted as they happen, which is
cheap and rare, rather than through usage events (a refused request has none).

Labels never carry key material: the reason and the endpoint's scope for
authentication, the limit and the key's team (or "none") for limits.
"""

from __future__ import annotations

from typing import Literal

from prometheus_client import CollectorRegistry, Counter

AuthFailure = Literal["missing", "invalid", "revoked", "scope"]
Limit = Literal["requests", "tokens", "budget"]


class Refusals:
    """Usage:
    refusals = Refusals(registry)      # no registry: counted but not exported (tests, tools)
    refusals.auth_failed("revoked", "chat")
    refusals.rate_limited("tokens", "search")
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.auth_failures = Counter(
            "corral_auth_failures",
            "Requests refused by authentication: missing, invalid or revoked key (401), or a key without "
            "the endpoint's scope (403)",
            ["reason", "scope"],
            registry=registry,
        )
        self.limited = Counter(
            "corral_rate_limited",
            "Requests refused by an API key's own limits: requests or tokens per minute (429), budget (402)",
            ["limit", "team"],
            registry=registry,
        )

    def auth_failed(self, reason: AuthFailure, scope: str) -> None:
        self.auth_failures.labels(reason, scope).inc()

    def rate_limited(self, limit: Limit, team: str | None) -> None:
        self.limited.labels(limit, team or "none").inc()
