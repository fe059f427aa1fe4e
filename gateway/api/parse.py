"""Body bytes -> validated `ChatRequest`, or a 4xx `GatewayError` naming the field at fault."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.requests import Request

from gateway.api.asgi import header
from gateway.api.duplicates import no_duplicate_keys, refuse_duplicate_keys
from gateway.catalogue.deployments import Catalogue
from gateway.errors import Code, GatewayError, bad_request, error
from gateway.schema.apply import apply_policy
from gateway.schema.chat import (
    ChatCompletionRequest,
    ChatRequest,
    CorralPrefs,
    estimate_prompt_tokens,
    features_of,
)
from gateway.serve.guard import BODY_RECEIVED
from gateway.toolcalls import prepare

#: Deepest JSON nesting accepted in a request body (orjson itself stops at 1024).
MAX_DEPTH = 64
#: Bodies of this size and more are parsed in a worker thread: a long prompt or a large tool
#: schema (checking one with a thousand patternProperties took over a second on a slow
#: machine) must not hold the event loop, and every other request of the worker, meanwhile.
OFF_LOOP_BYTES = 16 * 1024
_UNION_TAGS = frozenset({"system", "developer", "user", "assistant", "tool", "text", "image_url", "str", "list[str]"})


async def read_body(request: Request, limit: int, timeout_s: float = 30.0) -> bytes:
    """The body, refusing more than `limit` bytes without reading them all, and a body
    not complete within `timeout_s` (408: a slow client holds a connection and a task)."""
    declared = header(request, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    if BODY_RECEIVED in request.scope.get("extensions", ()):  # nothing left to wait for
        return await _receive_body(request, limit)
    try:
        async with asyncio.timeout(timeout_s):
            return await _receive_body(request, limit)
    except TimeoutError:
        raise error(Code.REQUEST_TIMEOUT, f"the request body did not arrive within {timeout_s:g} s") from None


async def _receive_body(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise error(Code.CLIENT_DISCONNECTED, "the client went away while sending the body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _too_large(limit: int) -> GatewayError:
    return error(Code.REQUEST_TOO_LARGE, f"request body is larger than {limit} bytes")


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def _param(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _UNION_TAGS or "[" in part or part.startswith(("function-", "constrained-")):
            continue
        else:
            out += f".{part}" if out else part
    return out


def _most_specific(errors: list[Any]) -> Any:
    """The error that says most: for a union (`stop`: a string or a list; content: a string
    or parts) pydantic reports every branch, and the first ("Input should be a valid
    string") is usually the least useful. Prefer errors other than a plain type mismatch,
    then the deepest location."""
    return min(errors, key=lambda e: (str(e["type"]).endswith("_type"), -len(e["loc"])))


def _validation_error(exc: ValidationError) -> GatewayError:
    first = _most_specific(exc.errors(include_url=False))
    param = _param(tuple(first["loc"]))
    kind = first["type"]
    if kind == "missing":
        return bad_request(f"missing required parameter: '{param}'", param=param, code=Code.MISSING_REQUIRED_PARAMETER)
    if kind == "extra_forbidden":
        return bad_request(f"unrecognized request argument: '{param}'", param=param, code=Code.UNSUPPORTED_PARAMETER)
    return bad_request(f"invalid value for '{param}': {first['msg']}", param=param)


async def parse_chat_request(raw: bytes, catalogue: Catalogue, request_id: str) -> ChatRequest:
    """`parse_chat`, off the event loop for a large body (`OFF_LOOP_BYTES`)."""
    if len(raw) < OFF_LOOP_BYTES:
        return parse_chat(raw, catalogue, request_id)
    return await asyncio.to_thread(parse_chat, raw, catalogue, request_id)


def parse_chat(raw: bytes, catalogue: Catalogue, request_id: str) -> ChatRequest:
    if not raw:
        raise bad_request("request body is empty; expected a JSON object", code=Code.INVALID_JSON)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"request body is not valid JSON: {exc}", code=Code.INVALID_JSON) from exc
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object", code=Code.INVALID_JSON)
    if not no_duplicate_keys(raw, body):
        refuse_duplicate_keys(raw)
    if "stream" in body and body["stream"] is None:
        del body["stream"]  # OpenAI accepts `stream: null` as the default (not streamed)
    # Nesting needs an opening bracket per level: few brackets in all, no walk needed.
    if raw.count(b"{") + raw.count(b"[") > MAX_DEPTH and _depth(body) > MAX_DEPTH:
        raise bad_request(f"request body is nested deeper than {MAX_DEPTH} levels", code=Code.INVALID_JSON)
    applied = apply_policy(body)
    try:
        req = ChatCompletionRequest.model_validate(body)
    except ValidationError as exc:
        raise _validation_error(exc) from exc
    logical = catalogue.resolve(req.model)
    if logical is None:
        known = ", ".join(sorted(catalogue.models))
        raise error(Code.MODEL_NOT_FOUND, f"the model '{req.model}' does not exist; available: {known}", param="model")
    prefs = req.corral or CorralPrefs()
    body.pop("corral", None)
    contract = prepare(body) if req.tools or req.response_format is not None else None
    stream_options = req.stream_options
    return ChatRequest(
        body=body,
        model=logical.name,
        stream=req.stream,
        include_usage=bool(req.stream and stream_options and stream_options.include_usage),
        features=features_of(body),
        prompt_tokens_estimate=estimate_prompt_tokens(body),
        max_output_tokens=req.max_completion_tokens or req.max_tokens,
        prefs=prefs,
        request_id=request_id,
        tool_contract=contract,
        cache_key=applied.cache_key,
        ignored=applied.ignored,
        legacy_functions=applied.legacy_functions,
    )
