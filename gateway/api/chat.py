"""POST /v1/chat/completions: parse, dispatch, serialise. No provider names here, and no
accounting: `gateway.dispatch.accounting` does that."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import orjson
from starlette.requests import Request

from gateway.api.asgi import JSONBody, header
from gateway.api.auth import authenticate
from gateway.api.cached import BYPASS_HEADER, CACHE_HEADER, hit_headers, once, streamed, whole
from gateway.api.exchange import Exchange, chat_headers
from gateway.api.parse import parse_chat_request, read_body
from gateway.api.replay import replayed
from gateway.api.sse_encode import DONE, SSEResponse, frame, usage_chunk
from gateway.cache.decide import Decision
from gateway.cache.entry import Entry
from gateway.cache.shapes import assemble, complete
from gateway.dispatch.accounting import COST_PLACES, Call
from gateway.dispatch.loop import Outcome
from gateway.dispatch.relay import Relay
from gateway.metering.idempotency import Answer, Ticket
from gateway.runtime import Runtime
from gateway.schema.apply import legacy_answer, legacy_chunk
from gateway.schema.chat import ChatRequest
from gateway.telemetry.tracing import activated


def make_handler(rt: Runtime) -> Any:
    async def chat_completions(request: Request) -> JSONBody | SSEResponse:
        ticket: Ticket | None = None
        try:
            with Exchange(rt) as ex:
                caller = authenticate(request, rt.keys, "chat")
                raw = await read_body(request, rt.settings.max_body_bytes, rt.settings.body_timeout_s)
                req = await parse_chat_request(raw, rt.catalogue, ex.request_id)
                ex.model = req.model
                idempotency_key = header(request, b"idempotency-key")
                if idempotency_key is not None:
                    begun = await rt.idempotency.begin(
                        caller.key_id or "", idempotency_key, raw, ex.request_id, req.stream
                    )
                    if isinstance(begun, Answer):
                        rt.accounting.replayed(req.model)
                        return replayed(begun)
                    ticket = begun
                call = await ex.admit(request, caller, req)
                warnings = rt.accounting.budget_warnings(call)
                entry, decision = await _lookup(rt, req, call.key_id, header(request, b"cache-control"))
                if entry is not None:
                    return await _from_cache(rt, call, entry, warnings, ticket)
                if req.stream:
                    return await _stream(rt, call, warnings, ticket, decision)
                with activated(call.span):
                    completion, outcome = await rt.dispatcher.complete(req, call.key_id)
        except BaseException:
            if ticket is not None:
                await ticket.release()
            raise
        body = completion.body
        body["model"] = req.model
        if req.legacy_functions:
            legacy_answer(body)
        total = rt.accounting.served(call, outcome, completion.usage)
        headers = chat_headers(ex.request_id, outcome, total, warnings)
        if decision is not None:
            await _keep_whole(rt, decision, body, outcome, total, headers)
        answer = JSONBody(orjson.dumps(body), headers)
        if ticket is not None:
            await ticket.keep(Answer(answer.status, headers, answer.body, stream=False))
        return answer

    return chat_completions


async def _lookup(
    rt: Runtime, req: ChatRequest, key_id: str | None, cache_control: str | None
) -> tuple[Entry | None, Decision | None]:
    """The cached answer for this request (None: go upstream) and how it uses the cache
    (None: not at all)."""
    decision = rt.cache.decide(rt.policy.current, req, key_id, cache_control)
    if decision is None or not decision.read:
        return None, decision
    return await rt.cache.lookup(decision, req.model)


async def _keep_whole(
    rt: Runtime, decision: Decision, body: dict[str, Any], outcome: Outcome, total: Decimal, headers: dict[str, str]
) -> None:
    cache_headers(headers, decision)
    if complete(body) and _validated(outcome):
        dep = outcome.deployment
        entry = Entry(body, dep.provider, dep.model_id, total, headers["x-corral-request-id"], outcome.tool_validation)
        await rt.cache.keep(decision, entry)


def cache_headers(headers: dict[str, str], decision: Decision) -> None:
    """`x-corral-cache: miss|bypass` (a hit has its own headers), and why it was bypassed."""
    headers[CACHE_HEADER] = decision.header
    if not decision.read:
        headers[BYPASS_HEADER] = decision.reason


def _validated(outcome: Outcome) -> bool:
    """Only answers whose tool calls passed validation (or had none to check) are kept."""
    return outcome.tool_validation not in {"invalid", "pending"}


async def _from_cache(
    rt: Runtime, call: Call, entry: Entry, warnings: tuple[str, ...], ticket: Ticket | None
) -> JSONBody | SSEResponse:
    """A hit: its own ledger row, the answer in the shape asked for (kept for an
    Idempotency-Key like any answer)."""
    req = call.req
    rt.accounting.cache_hit(call, entry.provider, entry.model_id, entry.cost_usd, entry.request_id)
    headers = hit_headers(req.request_id, entry, warnings, rt.dispatcher.ignored(req, entry.provider))
    if req.stream:
        body = streamed(entry, req.model, req.include_usage)
        if ticket is not None:
            await ticket.keep(Answer(200, headers, body, stream=True))
        return SSEResponse(once(body), headers)
    answer = whole(entry, req.model, headers)
    if ticket is not None:
        await ticket.keep(Answer(answer.status, headers, answer.body, stream=False))
    return answer


async def _stream(
    rt: Runtime, call: Call, warnings: tuple[str, ...], ticket: Ticket | None, decision: Decision | None
) -> SSEResponse:
    with activated(call.span):
        opened = await rt.dispatcher.open_stream(call.req, call.key_id)
    headers = chat_headers(call.req.request_id, opened.outcome, opened.outcome.expected_cost_usd, warnings)
    headers["x-corral-cost-estimated"] = "true"
    if decision is not None:
        cache_headers(headers, decision)
    relay = Relay(rt.accounting, opened, call)
    events = _events(relay, rt, decision if decision is not None and decision.store else None)
    if ticket is None:
        return SSEResponse(events, headers)
    # A stream is kept for replay only when it went out whole, [DONE] included.
    return SSEResponse(ticket.recorded(events, headers, lambda: relay.status == "ok", DONE), headers)


async def _events(relay: Relay, rt: Runtime, decision: Decision | None) -> AsyncIterator[bytes]:
    """Forward chunks as they arrive (everything that arrived together in one write; the
    upstream's last batch with the closing frames); always account for the stream, even
    when the client goes away. With a cache
    `decision`, a stream that ended well is kept as the whole answer it spelled out."""
    chunks: list[dict[str, Any]] | None = [] if decision is not None else None
    #: The upstream's last batch, held to go out in one write with the closing frames.
    last = b""
    try:
        legacy = relay.call.req.legacy_functions
        async for batch in relay.batches():
            if chunks is not None:
                chunks.extend(batch)
            out = b"".join([frame(legacy_chunk(chunk) if legacy else chunk) for chunk in batch])
            if relay.ended:
                last = out
            else:
                yield out
        if relay.error is not None:
            yield last + frame(relay.error)
            last = b""
    finally:
        await relay.close()
    if relay.status == "ok":
        if decision is not None and chunks is not None and _validated(relay.opened.outcome):
            if last:  # the answer does not wait for the cache's write (a round trip to Redis)
                yield last
                last = b""
            await _keep_stream(rt, relay, decision, chunks)
        yield last + _closing_frames(relay)
    elif last:
        yield last


async def _keep_stream(rt: Runtime, relay: Relay, decision: Decision, chunks: list[dict[str, Any]]) -> None:
    """Before the closing frames: the body generator is closed once [DONE] is written."""
    answer = assemble(chunks, relay.usage.to_openai())
    if answer is None:
        return
    outcome = relay.opened.outcome
    dep = outcome.deployment
    request_id = relay.call.req.request_id
    entry = Entry(answer, dep.provider, dep.model_id, relay.total_cost, request_id, outcome.tool_validation)
    await rt.cache.keep(decision, entry)


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
