"""POST /v1/chat/completions: parse, dispatch, serialise. No provider names here."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from opentelemetry.trace import Span
from starlette.requests import Request

from gateway.api.asgi import JSONBody
from gateway.api.auth import admit, authenticate
from gateway.api.parse import parse_chat, read_body
from gateway.api.sse_encode import DONE, SSEResponse, frame, usage_chunk
from gateway.dispatch.loop import OpenStream, Outcome
from gateway.errors import GatewayError
from gateway.keys.limiter import TokenCharge
from gateway.metering.events import AttemptRecord, UsageEvent
from gateway.providers.errors import UpstreamError
from gateway.runtime import Runtime
from gateway.schema.chat import CHARS_PER_TOKEN, ChatRequest
from gateway.schema.usage import Usage
from gateway.telemetry.tracing import activated, attach, detach, fail_span, finish_request_span, request_span

COST_PLACES = Decimal("0.0000000001")
#: The caller's key id and what admission took from its token bucket.
Caller = tuple[str | None, TokenCharge | None]
#: A random per-process prefix and a counter: unique across replicas without a syscall per request.
_ID_PREFIX = "req_" + secrets.token_hex(6)
_ids = itertools.count(1)


def next_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ids):010x}"


def _headers(request_id: str, outcome: Outcome, cost: Decimal, warnings: tuple[str, ...] = ()) -> dict[str, str]:
    headers = {
        "x-corral-request-id": request_id,
        "x-corral-provider": outcome.deployment.provider,
        "x-corral-model": outcome.deployment.model_id,
        "x-corral-attempts": str(len(outcome.attempts)),
        "x-corral-cost-usd": str(cost.quantize(COST_PLACES)),
    }
    if outcome.tool_validation is not None:
        headers["x-corral-tool-validation"] = outcome.tool_validation
    if warnings:
        headers["x-corral-budget-warning"] = "; ".join(warnings)
    return headers


def _billed(attempts: list[AttemptRecord]) -> Decimal:
    """What the provider billed for answers we did not deliver (re-asked tool calls)."""
    return sum((a.cost_usd for a in attempts), Decimal(0))


def _event(
    req: ChatRequest,
    outcome: Outcome | None,
    usage: Usage,
    cost: Decimal,
    status: str,
    started: float,
    ttft_ms: float | None = None,
    attempts: tuple[AttemptRecord, ...] = (),
    key_id: str | None = None,
) -> UsageEvent:
    dep = outcome.deployment if outcome else None
    return UsageEvent(
        request_id=req.request_id,
        at=datetime.now(UTC),
        model=req.model,
        provider=dep.provider if dep else "",
        model_id=dep.model_id if dep else "",
        status=status,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cached_tokens=usage.cached_tokens,
        usage_estimated=usage.estimated,
        cost_usd=cost,
        latency_ms=(time.perf_counter() - started) * 1000,
        ttft_ms=ttft_ms,
        stream=req.stream,
        attempts=tuple(outcome.attempts) if outcome else attempts,
        api_key_id=key_id,
        tags=dict(req.prefs.tags or {}),
        tool_validation=outcome.tool_validation if outcome else None,
    )


def _record_failure(rt: Runtime, req: ChatRequest, err: GatewayError, started: float, key_id: str | None) -> None:
    """A request that reached a backend gets its ledger row even when it failed."""
    if err.attempt_records:
        rt.record(_event(req, None, Usage(), Decimal(0), "error", started, attempts=err.attempt_records, key_id=key_id))


def _tokens_used(usage: Usage, attempts: tuple[AttemptRecord, ...] | list[AttemptRecord]) -> int:
    """Every token the providers reported for a request: the answer and any billed attempts."""
    return usage.total_tokens + sum(a.prompt_tokens + a.completion_tokens for a in attempts)


def _budget_warnings(rt: Runtime, req: ChatRequest, key_id: str | None) -> tuple[str, ...]:
    team = (req.prefs.tags or {}).get("team")
    try:
        return rt.budgets.check(team, key_id).warnings
    except GatewayError as err:
        if err.code == "budget_exceeded":
            rt.keys.refusals.rate_limited("budget", team)
        raise


def make_handler(rt: Runtime) -> Any:
    async def chat_completions(request: Request) -> JSONBody | SSEResponse:
        request_id = next_request_id()
        started = time.perf_counter()
        try:
            caller = authenticate(request, rt.keys, "chat")
            raw = await read_body(request, rt.settings.max_body_bytes)
            req = parse_chat(raw, rt.catalogue, request_id)
            key_id, charge = await admit(rt.keys, caller, req)
            span = request_span(rt.tracer, request.headers, req.model, request_id)
            try:
                warnings = _budget_warnings(rt, req, key_id)
                if req.stream:
                    return await _stream(rt, req, started, (key_id, charge), warnings, span)
                with activated(span):
                    completion, outcome = await rt.dispatcher.complete(req, key_id)
            except GatewayError as err:
                rt.keys.limiter.settle(charge, _tokens_used(Usage(), err.attempt_records))
                _record_failure(rt, req, err, started, key_id)
                fail_span(span, err.code or str(err.status), err.message)
                raise
        except GatewayError as err:
            err.headers.setdefault("x-corral-request-id", request_id)
            raise
        rt.keys.limiter.settle(charge, _tokens_used(completion.usage, outcome.attempts))
        cost = rt.dispatcher.cost(outcome.deployment, completion.usage, datetime.now(UTC).date())
        body = completion.body
        body["model"] = req.model
        rt.record(_event(req, outcome, completion.usage, cost, "ok", started, key_id=key_id))
        total = cost + _billed(outcome.attempts)
        _finish(span, outcome, completion.usage, total, "ok")
        headers = _headers(request_id, outcome, total, warnings)
        return JSONBody(orjson.dumps(body), headers)

    return chat_completions


def _finish(span: Span, outcome: Outcome, usage: Usage, cost: Decimal, status: str) -> None:
    finish_request_span(
        span,
        provider=outcome.deployment.provider,
        model_id=outcome.deployment.model_id,
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        cost_usd=str(cost.quantize(COST_PLACES)),
        attempts=len(outcome.attempts),
        rule=outcome.plan.rule,
        tool_validation=outcome.tool_validation,
        status=status,
    )


async def _stream(
    rt: Runtime, req: ChatRequest, started: float, caller: Caller, warnings: tuple[str, ...], span: Span
) -> SSEResponse:
    with activated(span):
        opened = await rt.dispatcher.open_stream(req, caller[0])
    headers = _headers(req.request_id, opened.outcome, opened.outcome.expected_cost_usd, warnings)
    headers["x-corral-cost-estimated"] = "true"
    return SSEResponse(_relay(rt, req, opened, started, caller, span), headers)


async def _upstream_batches(opened: OpenStream) -> AsyncIterator[list[dict[str, Any]]]:
    """Chunks grouped as they arrived upstream (the tool-call gate releases them one by one)."""
    if opened.guarded is not None:
        async for chunk in opened.guarded:
            yield [chunk]
        return
    if opened.first:
        yield opened.first
    async for batch in opened.batches:
        yield batch


def _error_frame(exc: UpstreamError, opened: OpenStream) -> bytes:
    if opened.guarded is not None and opened.guarded.failure is exc:
        return frame(opened.guarded.guard.failure().body())
    message = f"{exc.provider} failed mid-stream: {exc.message}"
    return frame({"error": {"message": message, "type": "upstream_error", "code": "upstream_failed", "param": None}})


async def _relay(
    rt: Runtime, req: ChatRequest, opened: OpenStream, started: float, caller: Caller, span: Span
) -> AsyncIterator[bytes]:
    """Forward chunks as they arrive; always meter, even when the client goes away."""
    key_id, charge = caller
    model = req.model
    chars = 0
    status = "cancelled"
    ttft_ms: float | None = None
    last: dict[str, Any] = opened.first[0] if opened.first else {}
    guarded = opened.guarded
    # Re-asks made while relaying become children of the request span.
    token = attach(span)
    try:
        async for batch in _upstream_batches(opened):
            if ttft_ms is None:
                ttft_ms = (time.perf_counter() - started) * 1000
            for chunk in batch:
                chunk["model"] = model
                for choice in chunk.get("choices") or ():
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        chars += len(content)
                last = chunk
            # Everything that arrived together goes out in one write.
            yield b"".join([frame(chunk) for chunk in batch])
        status = "ok"
    except UpstreamError as exc:
        status = "error"
        yield _error_frame(exc, opened)
    finally:
        reported = guarded.usage if guarded is not None else opened.stream.usage
        usage = reported or Usage(req.prompt_tokens_estimate, chars // CHARS_PER_TOKEN, 0, True)
        outcome = opened.outcome
        if guarded is not None and guarded.billed:
            # The invalid streamed answers came before the one delivered (the last attempt).
            outcome.attempts[-1:-1] = guarded.billed
        if guarded is not None:
            outcome.tool_validation = guarded.guard.verdict
        dep = outcome.deployment
        cost = rt.dispatcher.cost(dep, usage, datetime.now(UTC).date())
        if status == "ok" and ttft_ms is not None:
            generation_s = time.perf_counter() - started - ttft_ms / 1000
            rt.dispatcher.observe_stream(dep, ttft_ms, usage.completion_tokens, generation_s)
        rt.record(_event(req, outcome, usage, cost, status, started, ttft_ms, key_id=key_id))
        rt.keys.limiter.settle(charge, _tokens_used(usage, outcome.attempts))
        _finish(span, outcome, usage, cost + _billed(outcome.attempts), status)
        detach(token)
        stream = guarded.stream if guarded is not None else opened.stream
        await asyncio.shield(stream.aclose())
    if status == "ok":
        yield _closing_frames(req, outcome, usage, cost, last)


def _closing_frames(req: ChatRequest, outcome: Outcome, usage: Usage, cost: Decimal, last: dict[str, Any]) -> bytes:
    """[DONE], after the usage chunk when the client asked for one (with what Corral adds)."""
    if not req.include_usage:
        return DONE
    total = cost + _billed(outcome.attempts)
    corral: dict[str, str] = {"cost_usd": str(total.quantize(COST_PLACES)), "provider": outcome.deployment.provider}
    if outcome.tool_validation is not None:
        corral["tool_validation"] = outcome.tool_validation
    return frame(usage_chunk({**last, "model": req.model}, usage.to_openai(), {"x_corral": corral})) + DONE
