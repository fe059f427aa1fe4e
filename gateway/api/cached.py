"""An answer served from the response cache, in the shape the client asked for: the whole
answer as first sent, or told as a stream (one chunk per choice with the whole message,
one with its finish reason, the usage chunk when asked for, [DONE]). Headers name the
deployment that made it, `x-corral-cache: hit`, the original request id and what it
saved; the cost of this request is 0."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from gateway.api.asgi import JSONBody
from gateway.api.sse_encode import DONE, frame, usage_chunk
from gateway.cache.entry import Entry
from gateway.dispatch.accounting import COST_PLACES
from gateway.schema.params import IGNORED_HEADER

CACHE_HEADER = "x-corral-cache"
BYPASS_HEADER = "x-corral-cache-bypass"
ORIGINAL_HEADER = "x-corral-cache-original-request-id"
SAVED_HEADER = "x-corral-cache-saved-usd"
ZERO = "0.0000000000"


def hit_headers(
    request_id: str, entry: Entry, warnings: tuple[str, ...], ignored: tuple[str, ...] = ()
) -> dict[str, str]:
    """`ignored`: this request's fields without effect on the answer, as a miss would name
    them in `x-corral-ignored-params` (the parameter policy's, and what the deployment that
    made the answer drops)."""
    headers = {
        "x-corral-request-id": request_id,
        "x-corral-provider": entry.provider,
        "x-corral-model": entry.model_id,
        "x-corral-attempts": "0",
        "x-corral-cost-usd": ZERO,
        CACHE_HEADER: "hit",
        ORIGINAL_HEADER: entry.request_id,
        SAVED_HEADER: str(entry.cost_usd.quantize(COST_PLACES)),  # as x-corral-cost-usd is written
    }
    if entry.tool_validation is not None:
        headers["x-corral-tool-validation"] = entry.tool_validation
    if warnings:
        headers["x-corral-budget-warning"] = "; ".join(warnings)
    if ignored:
        headers[IGNORED_HEADER] = ", ".join(ignored)
    return headers


def whole(entry: Entry, model: str, headers: dict[str, str]) -> JSONBody:
    return JSONBody(orjson.dumps({**entry.answer, "model": model}), headers)


async def once(body: bytes) -> AsyncIterator[bytes]:
    yield body


def streamed(entry: Entry, model: str, include_usage: bool) -> bytes:
    corral = {"x_corral": {"cost_usd": ZERO, "provider": entry.provider, "cache": "hit"}}
    return as_stream({**entry.answer, "model": model}, include_usage, corral)


def as_stream(answer: dict[str, Any], include_usage: bool, extra: dict[str, Any]) -> bytes:
    """The SSE body of a whole answer: per choice, one chunk with the whole message and one
    with its finish reason; the usage chunk when asked for (with `extra`); then [DONE]."""
    head = {"id": answer.get("id", ""), "object": "chat.completion.chunk", "created": answer.get("created", 0)}
    head["model"] = answer.get("model", "")
    if include_usage:
        head["usage"] = None
    frames: list[bytes] = []
    for choice in answer.get("choices") or ():
        message = choice.get("message") or {}
        delta: dict[str, Any] = {"role": "assistant", "content": message.get("content")}
        if message.get("refusal"):
            delta["refusal"] = message["refusal"]
        if message.get("tool_calls"):
            delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(message["tool_calls"])]
        index = choice.get("index", 0)
        said = {"index": index, "delta": delta, "logprobs": choice.get("logprobs"), "finish_reason": None}
        ended = {"index": index, "delta": {}, "logprobs": None, "finish_reason": choice.get("finish_reason")}
        frames.append(frame({**head, "choices": [said]}))
        frames.append(frame({**head, "choices": [ended]}))
    if include_usage:
        frames.append(frame(usage_chunk(answer, answer.get("usage") or {}, extra)))
    return b"".join(frames) + DONE
