"""POST /v1/completions: OpenAI's legacy completions endpoint over the chat path.

The request is translated to a chat body (`completions_in`) and parsed exactly as a chat
request, so routing, the parameter policy, metering, budgets and policies apply unchanged
and the `x-corral-*` headers are the same; the answer is translated back
(`completions_out`): a `text_completion` object, or a stream of `text_completion` chunks
ending in `data: [DONE]` (after a usage chunk when `stream_options.include_usage` is set).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request

from gateway.api.asgi import JSONBody
from gateway.api.auth import authenticate
from gateway.api.completions_in import to_chat_body
from gateway.api.completions_out import TextShell
from gateway.api.exchange import Exchange, chat_headers
from gateway.api.parse import parse_chat_request, read_body
from gateway.api.responses import request_body
from gateway.api.sse_encode import DONE, SSEResponse, frame
from gateway.dispatch.accounting import COST_PLACES, Call
from gateway.dispatch.relay import Relay
from gateway.runtime import Runtime
from gateway.telemetry.tracing import activated


def make_handler(rt: Runtime) -> Any:
    async def create_completion(request: Request) -> JSONBody | SSEResponse:
        with Exchange(rt) as ex:
            caller = authenticate(request, rt.keys, "chat")
            raw = await read_body(request, rt.settings.max_body_bytes, rt.settings.body_timeout_s)
            completion = to_chat_body(request_body(raw))
            req = await parse_chat_request(orjson.dumps(completion.chat), rt.catalogue, ex.request_id)
            ex.model = req.model
            shell = TextShell(req.model, int(time.time()), completion.prompt if completion.echo else None)
            call = await ex.admit(request, caller, req)
            warnings = rt.accounting.budget_warnings(call)
            if req.stream:
                return await _stream(rt, call, warnings, shell)
            with activated(call.span):
                answer, outcome = await rt.dispatcher.complete(req, call.key_id)
        total = rt.accounting.served(call, outcome, answer.usage)
        headers = chat_headers(ex.request_id, outcome, total, warnings)
        return JSONBody(orjson.dumps(shell.answer(answer.body)), headers)

    return create_completion


async def _stream(rt: Runtime, call: Call, warnings: tuple[str, ...], shell: TextShell) -> SSEResponse:
    with activated(call.span):
        opened = await rt.dispatcher.open_stream(call.req, call.key_id)
    headers = chat_headers(call.req.request_id, opened.outcome, opened.outcome.expected_cost_usd, warnings)
    headers["x-corral-cost-estimated"] = "true"
    return SSEResponse(_events(Relay(rt.accounting, opened, call), shell), headers)


async def _events(relay: Relay, shell: TextShell) -> AsyncIterator[bytes]:
    """Text chunks as chat chunks arrive; the stream is always accounted for, even when the client leaves."""
    last = b""  # the upstream's last batch, held to go out with the closing frames (`Relay.ended`)
    try:
        echoed = shell.echoed()
        if echoed is not None:
            yield frame(echoed)
        async for batch in relay.batches():
            chunks = [shell.chunk(chunk) for chunk in batch]
            out = b"".join([frame(c) for c in chunks if c is not None])
            if relay.ended:
                last = out
            elif out:
                yield out
        if relay.error is not None:
            yield last + frame(relay.error)
            last = b""
    finally:
        await relay.close()
    if relay.status == "ok":
        yield last + _closing(relay, shell)
    elif last:
        yield last


def _closing(relay: Relay, shell: TextShell) -> bytes:
    """[DONE], after the usage chunk when the client asked for one (with what Corral adds)."""
    if not relay.call.req.include_usage:
        return DONE
    corral = {
        "cost_usd": str(relay.total_cost.quantize(COST_PLACES)),
        "provider": relay.opened.outcome.deployment.provider,
    }
    return frame(shell.usage(relay.usage.to_openai(), {"x_corral": corral})) + DONE
