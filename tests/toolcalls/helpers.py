"""Shared tools, answers and chunk builders for the tool-call tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

WEATHER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 1},
        "unit": {"type": "string", "enum": ["c", "f"]},
    },
    "required": ["city"],
    "additionalProperties": False,
}
TIME_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"tz": {"type": "string"}},
    "required": ["tz"],
}


def tool(name: str, parameters: dict[str, Any] | None) -> dict[str, Any]:
    function: dict[str, Any] = {"name": name}
    if parameters is not None:
        function["parameters"] = parameters
    return {"type": "function", "function": function}


WEATHER = tool("get_weather", WEATHER_SCHEMA)
TIME = tool("get_time", TIME_SCHEMA)


def request(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "llama-4-scout", "messages": [{"role": "user", "content": "Weather in Paris?"}]}
    body["tools"] = [WEATHER, TIME]
    body.update(extra)
    return {key: value for key, value in body.items() if value is not None}


def call(name: str, arguments: str, call_id: str = "call_1") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def completion(
    content: str | None = None, tool_calls: list[dict[str, Any]] | None = None, finish: str = "stop"
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "llama-4-scout",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
    }


def chunk(delta: dict[str, Any], finish: str | None = None, chunk_id: str = "chatcmpl-s1") -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
    return {"id": chunk_id, "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [choice]}


def pieces(text: str, cuts: list[int]) -> Iterator[str]:
    """`text` split at the given positions (sorted, deduplicated, in range)."""
    start = 0
    for cut in sorted({c for c in cuts if 0 < c < len(text)}):
        yield text[start:cut]
        start = cut
    yield text[start:]


def content_chunks(
    text: str, cuts: list[int], finish: str = "stop", chunk_id: str = "chatcmpl-s1"
) -> list[dict[str, Any]]:
    out = [chunk({"role": "assistant", "content": ""}, chunk_id=chunk_id)]
    out.extend(chunk({"content": piece}, chunk_id=chunk_id) for piece in pieces(text, cuts))
    out.append(chunk({}, finish, chunk_id=chunk_id))
    return out


def call_chunks(
    calls: list[tuple[str, str, str]], cuts: list[int], finish: str = "tool_calls", chunk_id: str = "chatcmpl-s1"
) -> list[dict[str, Any]]:
    """Upstream chunks streaming (id, name, arguments) calls, the arguments split at `cuts`."""
    out = [chunk({"role": "assistant"}, chunk_id=chunk_id)]
    for index, (call_id, name, arguments) in enumerate(calls):
        head = {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
        out.append(chunk({"tool_calls": [head]}, chunk_id=chunk_id))
        for piece in pieces(arguments, cuts):
            out.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}, chunk_id=chunk_id))
    out.append(chunk({}, finish, chunk_id=chunk_id))
    return out


def ids(prefix: str = "call_gen") -> Iterator[str]:
    number = 0
    while True:
        number += 1
        yield f"{prefix}{number}"
