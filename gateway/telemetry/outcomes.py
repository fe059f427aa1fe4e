"""How each chat request ended, for `corral_requests_total`: an outcome and a reason from a
small fixed vocabulary (never free text), plus the model alias, the provider that served it,
the policy rule and the split arm where they apply. One `Ended` per client request, made at
the HTTP edge or when a stream ends, and counted off the request path by `Metrics`.

Outcomes: served; refused (Corral's own checks said no: auth, bad request, a body too slow
to arrive, key limits, budget, policy, nothing to route to, breakers open, deployments
cooling down); failed (the backends or Corral could not answer); client_gone (the client
left before the end).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from gateway.errors import Code, GatewayError

Outcome = Literal["served", "refused", "failed", "client_gone"]

#: The reason a code gives when the error names none of its own.
_BY_CODE: dict[Code, tuple[Outcome, str]] = {
    Code.INVALID_API_KEY: ("refused", "auth"),
    Code.INSUFFICIENT_SCOPE: ("refused", "auth"),
    Code.BUDGET_EXCEEDED: ("refused", "budget"),
    Code.POLICY_REJECTED: ("refused", "policy"),
    Code.RATE_LIMIT_EXCEEDED: ("refused", "rate_limited"),
    Code.NO_DEPLOYMENT_AVAILABLE: ("refused", "no_deployment"),
    Code.CLIENT_DISCONNECTED: ("client_gone", "client_gone"),
    Code.REQUEST_TIMEOUT: ("refused", "client_too_slow"),
    Code.UPSTREAM_FAILED: ("failed", "upstream_failed"),
    Code.TOOL_CALL_VALIDATION_FAILED: ("failed", "tool_calls_invalid"),
    Code.UPSTREAM_UNAVAILABLE: ("failed", "upstream_unavailable"),
    Code.UPSTREAM_TIMEOUT: ("failed", "upstream_timeout"),
    Code.LEDGER_UNAVAILABLE: ("failed", "ledger_unavailable"),
    Code.KEY_STORE_UNAVAILABLE: ("failed", "key_store_unavailable"),
    Code.INTERNAL_ERROR: ("failed", "internal"),
}

#: Reasons set on an error where its code is shared (see `GatewayError.reason`).
_BY_REASON: dict[str, Outcome] = {
    "rate_limited": "refused",
    "cooling_down": "refused",
    "breaker_open": "refused",
    "upstream_rate_limited": "failed",
}

#: How a stream's status (gateway.dispatch.relay) ends.
_BY_STREAM_STATUS: dict[str, tuple[Outcome, str]] = {
    "ok": ("served", "ok"),
    "error": ("failed", "upstream_failed"),
    "cancelled": ("client_gone", "client_gone"),
}


class Ended(NamedTuple):
    """One request's labels for `corral_requests_total`, in its label order."""

    model: str
    provider: str
    outcome: str
    reason: str
    rule: str
    arm: str


def classify(err: GatewayError) -> tuple[Outcome, str]:
    """Every other 4xx the gateway sends is the request's own fault: a bad request."""
    if err.reason in _BY_REASON:
        return _BY_REASON[err.reason], err.reason
    if err.code in _BY_CODE:
        return _BY_CODE[err.code]
    return ("refused", "bad_request") if err.status < 500 else ("failed", "internal")


def refused(model: str | None, err: GatewayError) -> Ended:
    outcome, reason = classify(err)
    return Ended(model or "none", "none", outcome, reason, err.rule or "", err.arm or "")


def finished(model: str, provider: str, status: str, rule: str | None, arm: str | None) -> Ended:
    """A request a deployment answered (whole, or a stream however it ended)."""
    outcome, reason = _BY_STREAM_STATUS.get(status, ("failed", "upstream_failed"))
    return Ended(model, provider or "none", outcome, reason, rule or "", arm or "")


def replayed(model: str) -> Ended:
    """Served again from the idempotency store (no deployment asked)."""
    return Ended(model, "none", "served", "replayed", "", "")


def cached(model: str, provider: str) -> Ended:
    """Served from the response cache (what `provider` once answered; no deployment asked)."""
    return Ended(model, provider or "none", "served", "cache_hit", "", "")


def internal(model: str | None) -> Ended:
    """A request the gateway failed on with an unexpected exception."""
    return Ended(model or "none", "none", "failed", "internal", "", "")
