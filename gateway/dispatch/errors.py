"""What the client is told when dispatch cannot serve a request: honest statuses,
the backends tried and why each was dropped."""

from __future__ import annotations

from typing import Any

from gateway.errors import Code, GatewayError, error
from gateway.metering.events import AttemptRecord
from gateway.providers.errors import ErrorKind, UpstreamError
from gateway.routing.types import Plan

NOT_CONFIGURED = "provider not configured"


def attempts_extra(records: list[AttemptRecord]) -> dict[str, Any]:
    return {
        "attempts": [
            {
                "provider": r.provider,
                "model_id": r.model_id,
                "kind": r.error_kind,
                "status": r.status,
                "message": r.message,
            }
            for r in records
        ]
    }


def _dropped_extra(the_plan: Plan) -> list[dict[str, str]]:
    return [{"provider": d.deployment.provider, "reason": d.reason} for d in the_plan.dropped]


def rejected(the_plan: Plan) -> GatewayError:
    return GatewayError(
        403,
        the_plan.rejected or "refused by policy",
        type="permission_error",
        code=Code.POLICY_REJECTED,
        extra={"rule": the_plan.rule},
    )


def no_candidates(the_plan: Plan) -> GatewayError:
    dropped = _dropped_extra(the_plan)
    extra: dict[str, Any] = {"dropped": dropped, "rule": the_plan.rule}
    relevant = [d for d in the_plan.dropped if d.reason != NOT_CONFIGURED]
    cooling = [d.retry_after_s for d in relevant if d.retry_after_s is not None]
    if cooling and len(cooling) == len(relevant):
        wait = max(1, round(min(cooling)))
        return error(
            Code.RATE_LIMIT_EXCEEDED,
            f"every deployment of {the_plan.model} is rate-limited; retry in {wait}s",
            headers={"retry-after": str(wait)},
            extra=extra,
        )
    if relevant and all(d.reason.startswith("context window") for d in relevant):
        return error(
            Code.CONTEXT_LENGTH_EXCEEDED,
            f"the prompt is too long for every deployment of {the_plan.model}",
            param="messages",
            extra=extra,
        )
    reasons = "; ".join(f"{d['provider']}: {d['reason']}" for d in dropped)
    serving = [d for d in relevant if not d.retired]
    params = sorted({d.param for d in serving if d.param is not None})
    if serving and all(d.param is not None for d in serving):
        # No configured deployment can ever serve this: the client must change the request
        # (a retryable 503 would only be retried).
        return error(
            Code.UNSUPPORTED_PARAMETER,
            f"no deployment of {the_plan.model} supports this request's {', '.join(params)} ({reasons})",
            param=params[0],
            extra=extra,
        )
    return error(
        Code.NO_DEPLOYMENT_AVAILABLE,
        f"no deployment of {the_plan.model} can serve this request ({reasons})",
        extra=extra,
    )


def caller_error(exc: UpstreamError, records: list[AttemptRecord]) -> GatewayError:
    return GatewayError(
        400,
        f"{exc.provider} rejected the request: {exc.message}",
        param=exc.param,
        code=Code.INVALID_VALUE,
        extra=attempts_extra(records),
    )


def timed_out(the_plan: Plan, deadline_ms: float, records: list[AttemptRecord]) -> GatewayError:
    tried = ", ".join(dict.fromkeys(r.provider for r in records)) or "none"
    return error(
        Code.UPSTREAM_TIMEOUT,
        f"no answer within the {deadline_ms:.0f} ms deadline (tried: {tried})",
        extra=attempts_extra(records),
    )


def exhausted(the_plan: Plan, failures: list[UpstreamError], records: list[AttemptRecord]) -> GatewayError:
    kinds = {f.kind for f in failures}
    tried = ", ".join(dict.fromkeys(f.provider for f in failures)) or "none (breakers open)"
    extra = attempts_extra(records)
    if kinds == {ErrorKind.RATE_LIMITED}:
        waits = [f.retry_after for f in failures if f.retry_after is not None]
        wait = max(1, round(min(waits))) if waits else 5
        return error(
            Code.RATE_LIMIT_EXCEEDED,
            f"every backend tried is rate-limiting ({tried}); retry in {wait}s",
            headers={"retry-after": str(wait)},
            extra=extra,
        )
    if kinds == {ErrorKind.CONTEXT_TOO_LONG}:
        return error(
            Code.CONTEXT_LENGTH_EXCEEDED,
            f"the prompt is too long for every backend tried ({tried})",
            param="messages",
            extra=extra,
        )
    if failures and failures[-1].kind is ErrorKind.TIMEOUT:
        return error(Code.UPSTREAM_TIMEOUT, f"upstream timed out (tried: {tried})", extra=extra)
    if kinds <= {ErrorKind.OVERLOADED, ErrorKind.CONNECTION, ErrorKind.RATE_LIMITED}:
        return error(
            Code.UPSTREAM_UNAVAILABLE,
            f"no backend could take the request (tried: {tried})",
            extra=extra,
        )
    return error(Code.UPSTREAM_FAILED, f"every backend failed (tried: {tried})", extra=extra)
