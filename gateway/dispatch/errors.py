"""What the client is told when dispatch cannot serve a request: honest statuses,
the backends tried and why each was dropped."""

from __future__ import annotations

from typing import Any

from gateway.errors import Code, GatewayError, error
from gateway.metering.events import AttemptRecord
from gateway.providers.errors import ErrorKind, UpstreamError
from gateway.routing.types import BREAKER_OPEN, NOT_CONFIGURED, Dropped, Plan


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
        return _because(
            "cooling_down",
            error(
                Code.RATE_LIMIT_EXCEEDED,
                f"every deployment of {the_plan.model} is rate-limited; retry in {wait}s",
                headers={"retry-after": str(wait)},
                extra=extra,
            ),
        )
    if relevant and all(d.reason.startswith("context window") for d in relevant):
        return error(
            Code.CONTEXT_LENGTH_EXCEEDED,
            f"the prompt is too long for every deployment of {the_plan.model}",
            param="messages",
            extra=extra,
        )
    reasons = "; ".join(f"{d['provider']}: {d['reason']}" for d in dropped)
    if relevant and not any(d.live for d in relevant):
        return _never_servable(the_plan, relevant, reasons, extra)
    unavailable = error(
        Code.NO_DEPLOYMENT_AVAILABLE,
        f"no deployment of {the_plan.model} can serve this request ({reasons})",
        extra=extra,
    )
    waiting = [d for d in relevant if d.live]
    if waiting and all(d.reason.startswith(BREAKER_OPEN) for d in waiting):
        return _because("breaker_open", unavailable)
    return unavailable


def _because(reason: str, err: GatewayError) -> GatewayError:
    """Name the reason for the metrics where the code alone does not (never sent)."""
    err.reason = reason
    return err


def _never_servable(the_plan: Plan, relevant: list[Dropped], reasons: str, extra: dict[str, Any]) -> GatewayError:
    """No deployment could serve this request however long the client waited (the features it
    uses, its limits, the policy): a 4xx naming the parameter or rule, never a 503 that
    clients retry."""
    if all(d.by_policy for d in relevant):
        rule = f"rule {the_plan.rule!r}" if the_plan.rule else "its defaults"
        message = f"the policy ({rule}) allows no deployment of {the_plan.model} for this request ({reasons})"
        return error(Code.POLICY_REJECTED, message, extra=extra)
    # The request's own routing preferences name a parameter too; a feature says more.
    params = [d.param for d in relevant if d.param]
    param = next((p for p in params if not p.startswith("corral.")), params[0] if params else None)
    message = f"no deployment of {the_plan.model} can serve this request ({reasons})"
    return error(Code.UNSUPPORTED_PARAMETER if param else Code.INVALID_VALUE, message, param=param, extra=extra)


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
        return _because(
            "upstream_rate_limited",
            error(
                Code.RATE_LIMIT_EXCEEDED,
                f"every backend tried is rate-limiting ({tried}); retry in {wait}s",
                headers={"retry-after": str(wait)},
                extra=extra,
            ),
        )
    if kinds == {ErrorKind.UNSUPPORTED}:
        return _unsupported(the_plan, failures, extra)
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


def _unsupported(the_plan: Plan, failures: list[UpstreamError], extra: dict[str, Any]) -> GatewayError:
    """Every backend tried refused a feature of the request: retrying cannot help (400, not
    503), and the client is told which feature, never the providers' own refusal texts."""
    refusals = [f"{f.provider} does not support {f.param or 'a feature this request uses'}" for f in failures]
    feature = next((f.param for f in failures if f.param), None)
    message = f"no deployment of {the_plan.model} can serve this request: " + "; ".join(dict.fromkeys(refusals))
    return error(Code.UNSUPPORTED_PARAMETER, message, param=feature, extra=extra)
