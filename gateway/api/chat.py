"""POST /v1/chat/completions: parse, dispatch, serialise. No provider names here, and no
accounting: `gateway.dispatch.accounting` does that."""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import orjson
from starlette.requests import Request

from gateway.api.asgi import JSONBody
from gateway.api.auth import admit, authenticate
from gateway.api.parse import parse_chat, read_body
from gateway.api.replay import replayed
from gateway.api.sse_encode import DONE, SSEResponse, frame, usage_chunk
from gateway.dispatch.accounting import COST_PLACES, Call
from gateway.dispatch.loop import Outcome
from gateway.dispatch.relay import Relay
from gateway.errors import GatewayError
from gateway.metering.idempotency import Answer, Ticket
from gateway.runtime import Runtime
from gateway.schema.apply import legacy_answer, legacy_chunk
from gateway.schema.params import IGNORED_HEADER
from gateway.telemetry.tracing import activated, request_span

#: A random per-process prefix and a counter: unique across replicas without a syscall per request.
_ID_PREFIX = "req_" + secrets.token_hex(6)
_ids = itertools.count(1)


def next_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ids):010x}"


def chat_headers(request_id: str, outcome: Outcome, cost: Decimal, warnings: tuple[str, ...] = ()) -> dict[str, str]:
    headers = {
        "x-corral-request-id": request_id,
        "x-corral-provider": outcome.deployment.provider,
        "x-corral-model": outcome.deployment.model_id,
        "x-corral-attempts": str(len(outcome.attempts)),
        "x-corral-cost-usd": str(cost.quantize(COST_PLACES)),
    }
    if outcome.hedge_winner is not None:
        headers["x-corral-hedged"] = "true"
        headers["x-corral-hedge-winner"] = outcome.hedge_winner
    if outcome.tool_validation is not None:
        headers["x-corral-tool-validation"] = outcome.tool_validation
    if warnings:
        headers["x-corral-budget-warning"] = "; ".join(warnings)
    if outcome.ignored:
        headers[IGNORED_HEADER] = ", ".join(outcome.ignored)
    return headers


def make_handler(rt: Runtime) -> Any:
    async def chat_completions(request: Request) -> JSONBody | SSEResponse:
        request_id = next_request_id()
        started = time.perf_counter()
        ticket: Ticket | None = None
        model: str | None = None
        call: Call | None = None
        try:
            caller = authenticate(request, rt.keys, "chat")
            raw = await read_body(request, rt.settings.max_body_bytes, rt.settings.body_timeout_s)
            req = parse_chat(raw, rt.catalogue, request_id)
            model = req.model
            idempotency_key = request.headers.get("idempotency-key")
            if idempotency_key is not None:
                begun = await rt.idempotency.begin(caller.key_id or "", idempotency_key, raw, request_id, req.stream)
                if isinstance(begun, Answer):
                    rt.accounting.replayed(model)
                    return replayed(begun)
                ticket = begun
            key_id, charge = await admit(rt.keys, caller, req, rt.policy.current.teams.require_key_team)
            call = Call(req, started, key_id, charge, request_span(rt.tracer, request.headers, req.model, request_id))
            try:
                warnings = rt.accounting.budget_warnings(call)
                if req.stream:
                    return await _stream(rt, call, warnings, ticket)
                with activated(call.span):
                    completion, outcome = await rt.dispatcher.complete(req, key_id)
            except GatewayError as err:
                rt.accounting.failed(call, err)
                raise
        except BaseException as err:
            if isinstance(err, GatewayError):
                err.headers.setdefault("x-corral-request-id", request_id)
                if call is None:  # after that, `failed` counted it
                    rt.accounting.refused(model, err)
            elif isinstance(err, Exception):
                rt.accounting.crashed(model)
            if ticket is not None:
                await ticket.release()
            raise
        body = completion.body
        body["model"] = req.model
        if req.legacy_functions:
            legacy_answer(body)
        total = rt.accounting.served(call, outcome, completion.usage)
        headers = chat_headers(request_id, outcome, total, warnings)
        answer = JSONBody(orjson.dumps(body), headers)
        if ticket is not None:
            await ticket.keep(Answer(answer.status, headers, answer.body, stream=False))
        return answer

    return chat_completions


async def _stream(rt: Runtime, call: Call, warnings: tuple[str, ...], ticket: Ticket | None) -> SSEResponse:
    with activated(call.span):
        opened = await rt.dispatcher.open_stream(call.req, call.key_id)
    headers = chat_headers(call.req.request_id, opened.outcome, opened.outcome.expected_cost_usd, warnings)
    headers["x-corral-cost-estimated"] = "true"
    relay = Relay(rt.accounting, opened, call)
    if ticket is None:
        return SSEResponse(_events(relay), headers)
    # A stream is kept for replay only when it went out whole, [DONE] included.
    return SSEResponse(ticket.recorded(_events(relay), headers, lambda: relay.status == "ok", DONE), headers)


async def _events(relay: Relay) -> AsyncIterator[bytes]:
    """Forward chunks as they arrive (everything that arrived together in one write);
    always account for the stream, even when the client goes away."""
    try:
        legacy = relay.call.req.legacy_functions
        async for batch in relay.batches():
            yield b"".join([frame(legacy_chunk(chunk) if legacy else chunk) for chunk in batch])
        if relay.error is not None:
            yield frame(relay.error)
    finally:
        await relay.close()
    if relay.status == "ok":
        yield _closing_frames(relay)


def _closing_frames(relay: Relay) -> bytes:
    """[DONE], after the usage chunk when the client asked for one (with what Corral adds)."""
    req, outcome = relay.call.req, relay.opened.outcome
    if not req.include_usage:
        return DONE
    corral: dict[str, str] = {
        "cost_usd": str(relay.total_cost.quantize(COST_PLACES)),
        "provider": outcome.deployment.provider,
    }
    if outcome.tool_validation is not None:
        corral["tool_validation"] = outcome.tool_validation
    last = {**relay.last, "model": req.model}
    return frame(usage_chunk(last, relay.usage.to_openai(), {"x_corral": corral})) + DONE
