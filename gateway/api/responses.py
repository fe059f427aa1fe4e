"""POST /v1/responses: the OpenAI Responses API over the chat path.

The request is translated to a chat body (`responses_in`) and parsed exactly as a chat
request, so routing, the parameter policy, tool-call validation, metering, budgets and
policies apply unchanged (but for the response cache, which serves chat completions only:
`corral.cache` is refused here); the answer is translated back (`responses_out`). Each response's
conversation is kept (`gateway.metering.conversations`, in the ledger database) for
`previous_response_id`, under the caller's API key, unless the request says `store: false`;
it is written before the answer (or a stream's `response.completed`) goes out, so a
follow-up reaching any replica finds it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request

from gateway.api.asgi import JSONBody
from gateway.api.auth import authenticate
from gateway.api.exchange import Exchange, chat_headers
from gateway.api.parse import parse_chat_request, read_body
from gateway.api.responses_in import to_chat_body
from gateway.api.responses_out import EventStream, ResponseShell, assistant_message, response_object
from gateway.api.sse_encode import LastWrite, SSEResponse
from gateway.dispatch.accounting import Call
from gateway.dispatch.relay import Relay
from gateway.errors import Code, bad_request, error
from gateway.metering.conversations import Conversations
from gateway.runtime import Runtime
from gateway.telemetry.tracing import activated


def request_body(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"request body is not valid JSON: {exc}", code=Code.INVALID_JSON) from exc
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object", code=Code.INVALID_JSON)
    return body


async def _history(store: Conversations, scope: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    previous = body.get("previous_response_id")
    if previous is None:
        return []
    found = await store.get(scope, previous) if isinstance(previous, str) else None
    if found is None:
        raise error(
            Code.NOT_FOUND,
            f"previous response with id '{previous}' not found (responses are kept for "
            f"{store.retention_s:.0f} s, for the API key that made them)",
            param="previous_response_id",
        )
    return found


class Keeper:
    """Stores an answered response's conversation (unless the request said `store: false`)."""

    def __init__(self, store: Conversations, scope: str, history: list[dict[str, Any]], wanted: bool) -> None:
        self.store = store
        self.scope = scope
        self.history = history
        self.wanted = wanted

    async def __call__(self, response: dict[str, Any]) -> None:
        if self.wanted:
            await self.store.put(self.scope, response["id"], [*self.history, assistant_message(response)])


def make_handler(rt: Runtime) -> Any:
    async def create_response(request: Request) -> JSONBody | SSEResponse:
        with Exchange(rt) as ex:
            caller = authenticate(request, rt.keys, "chat")
            body = request_body(await read_body(request, rt.settings.max_body_bytes, rt.settings.body_timeout_s))
            scope = caller.key_id or ""
            chat = to_chat_body(body, await _history(rt.responses, scope, body))
            req = await parse_chat_request(orjson.dumps(chat), rt.catalogue, ex.request_id)
            ex.model = req.model
            if req.prefs.cache is not None:
                raise bad_request(
                    "the response cache serves /v1/chat/completions only; remove corral.cache",
                    param="corral.cache",
                    code=Code.UNSUPPORTED_PARAMETER,
                )
            history = chat["messages"][1:] if body.get("instructions") is not None else chat["messages"]
            shell = ResponseShell(req.model, body, created_at=int(time.time()))
            keep = Keeper(rt.responses, scope, history, body.get("store") is not False)
            call = await ex.admit(request, caller, req)
            warnings = rt.accounting.budget_warnings(call)
            if req.stream:
                return await _stream(rt, call, warnings, shell, keep)
            with activated(call.span):
                completion, outcome = await rt.dispatcher.complete(req, call.key_id)
        total = rt.accounting.served(call, outcome, completion.usage)
        answer = response_object(shell, completion.body)
        await keep(answer)
        return JSONBody(orjson.dumps(answer), chat_headers(ex.request_id, outcome, total, warnings))

    return create_response


async def _stream(
    rt: Runtime,
    call: Call,
    warnings: tuple[str, ...],
    shell: ResponseShell,
    keep: Keeper,
) -> SSEResponse:
    with activated(call.span):
        opened = await rt.dispatcher.open_stream(call.req, call.key_id)
    headers = chat_headers(call.req.request_id, opened.outcome, opened.outcome.expected_cost_usd, warnings)
    headers["x-corral-cost-estimated"] = "true"
    return SSEResponse(_events(Relay(rt.accounting, opened, call), EventStream(shell), keep), headers)


async def _events(relay: Relay, events: EventStream, keep: Keeper) -> AsyncIterator[bytes]:
    """Events as chunks arrive; the stream is always accounted for, even when the client leaves.
    The opening events go out with the first batch (read before the response started) and
    the upstream's last batch with the closing events (`Relay.ended`), each in one write;
    a response that is stored (`store`, the default) is written before the store's write."""
    held = events.start()
    try:
        if relay.gated:  # the tool-call gate may hold the first chunk back: no waiting for it
            yield held
            held = b""
        async for batch in relay.batches():
            out = held + b"".join([events.chunk(chunk) for chunk in batch])
            held = b""
            if relay.ended:
                held = out
            elif out:
                yield out
    finally:
        await relay.close()
    if relay.error is not None:
        yield LastWrite(held + events.failed(relay.error))
    elif relay.status == "ok":
        closing, response = events.finish(relay.usage.to_openai())
        if keep.wanted and held:  # the answer does not wait for the conversation's write
            yield held
            held = b""
        await keep(response)
        yield LastWrite(held + closing)
    elif held:
        yield held
