"""OpenAI-dialect answers -> plain OpenAI shapes, the same whichever backend served them.

Kept: `id`, `object`, `created`, `model`, `system_fingerprint`, and per choice
`index`, `message` / `delta` (`role`, `content`, `tool_calls`), `finish_reason`,
`logprobs`. Dropped: provider extras (`x_groq`, `warnings`, `seed`, `usage.estimated_cost`,
`stop_reason`, `token_id`, `reasoning`, ...). Usage is handled by the adapter (it is
lifted from different places and re-emitted by the gateway), so these functions never
put it in a chunk. Anything that is not the expected shape raises `Malformed`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["FINISH_REASONS", "Malformed", "Shape", "normalise_chunk", "normalise_completion", "plain_chunk"]

#: Backend finish reasons -> OpenAI's. Unknown values pass through unchanged.
FINISH_REASONS: Mapping[str, str | None] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "function_call": "function_call",
    "eos": "stop",  # Together
    "tool_call": "tool_calls",
    "": None,
}
_DELTA_KEYS = ("role", "content", "tool_calls")
_DELTA_KEY_SET = frozenset(_DELTA_KEYS)


class Malformed(ValueError):
    """The backend's answer is not the shape the OpenAI dialect promises."""


def _keep_logprobs(value: Any, choice: Mapping[str, Any]) -> Any:
    return value if isinstance(value, dict) else None


@dataclass(frozen=True, slots=True)
class Shape:
    """The per-provider parts of normalisation."""

    finish_reasons: Mapping[str, str | None] = field(default_factory=lambda: FINISH_REASONS)
    #: (backend logprobs, backend choice) -> OpenAI `logprobs` object or None.
    logprobs: Callable[[Any, Mapping[str, Any]], Any] = _keep_logprobs


def _finish(value: Any, shape: Shape) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Malformed(f"finish_reason is {type(value).__name__}")
    return shape.finish_reasons.get(value, value)


def _arguments(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode() if value is not None else ""


def _tool_call(call: Any) -> dict[str, Any]:
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        raise Malformed("tool call without a function")
    function = call["function"]
    return {
        "id": call.get("id") or f"call_{os.urandom(12).hex()}",
        "type": "function",
        "function": {"name": function.get("name") or "", "arguments": _arguments(function.get("arguments"))},
    }


def _message(message: Any) -> dict[str, Any]:
    if not isinstance(message, dict):
        raise Malformed("choice without a message")
    out: dict[str, Any] = {"role": message.get("role") or "assistant", "content": message.get("content")}
    calls = message.get("tool_calls")
    if calls:
        if not isinstance(calls, list):
            raise Malformed("tool_calls is not a list")
        out["tool_calls"] = [_tool_call(call) for call in calls]
    return out


def _choices(raw: Mapping[str, Any]) -> list[Any]:
    choices = raw.get("choices")
    if not isinstance(choices, list):
        raise Malformed("no choices list")
    return choices


def normalise_completion(raw: Any, shape: Shape) -> dict[str, Any]:
    """A `chat.completion` body (without `usage`) from the backend's parsed answer."""
    if not isinstance(raw, dict):
        raise Malformed("answer is not a JSON object")
    choices = _choices(raw)
    if not choices:
        raise Malformed("empty choices")
    out_choices = []
    for position, choice in enumerate(choices):
        if not isinstance(choice, dict):
            raise Malformed("choice is not an object")
        out_choices.append(
            {
                "index": choice.get("index", position),
                "message": _message(choice.get("message")),
                "finish_reason": _finish(choice.get("finish_reason"), shape),
                "logprobs": shape.logprobs(choice.get("logprobs"), choice),
            }
        )
    return _envelope(raw, "chat.completion", out_choices)


def _envelope(raw: dict[str, Any], kind: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
    """The OpenAI fields around the choices, the same for answers and chunks."""
    out: dict[str, Any] = {
        "id": raw.get("id") or "",
        "object": kind,
        "created": raw.get("created") or 0,
        "model": raw.get("model") or "",
        "choices": choices,
    }
    if raw.get("system_fingerprint"):
        out["system_fingerprint"] = raw["system_fingerprint"]
    return out


def _delta_tool_calls(calls: Any) -> list[dict[str, Any]]:
    if not isinstance(calls, list):
        raise Malformed("delta tool_calls is not a list")
    out = []
    for position, call in enumerate(calls):
        if not isinstance(call, dict):
            raise Malformed("delta tool call is not an object")
        item: dict[str, Any] = {"index": call.get("index", position)}
        if call.get("id"):
            item["id"] = call["id"]
            item["type"] = "function"
        function = call.get("function")
        if isinstance(function, dict):
            item["function"] = {k: function[k] for k in ("name", "arguments") if function.get(k) is not None}
        out.append(item)
    return out


def _delta(delta: Any) -> dict[str, Any]:
    if not isinstance(delta, dict):
        raise Malformed("chunk choice without a delta")
    if "tool_calls" not in delta and delta.keys() <= _DELTA_KEY_SET:
        return delta  # already only the fields we pass on (nearly every text chunk)
    out = {key: delta[key] for key in _DELTA_KEYS if key in delta}
    if out.get("tool_calls") is not None:
        out["tool_calls"] = _delta_tool_calls(out["tool_calls"])
    elif "tool_calls" in out:
        del out["tool_calls"]
    return out


def plain_chunk(raw: dict[str, Any]) -> bool:
    """A text chunk already exactly what `normalise_chunk` would make of it (nearly every
    chunk of an answer), which is passed on as it is instead of being rebuilt: exactly the
    five envelope keys and one choice of exactly four keys (the lengths and the lookups
    together say so), no finish reason, logprobs, tool calls, usage or error."""
    choices = raw.get("choices")
    if type(choices) is not list or len(choices) != 1 or len(raw) != 5:
        return False
    if raw.get("object") != "chat.completion.chunk":
        return False
    choice = choices[0]
    if type(choice) is not dict or len(choice) != 4 or "index" not in choice:
        return False
    if choice.get("finish_reason", 0) is not None or choice.get("logprobs", 0) is not None:
        return False
    delta = choice.get("delta")
    if type(delta) is not dict or "tool_calls" in delta or not delta.keys() <= _DELTA_KEY_SET:
        return False
    return bool(raw.get("id") and raw.get("created") and raw.get("model"))


def normalise_chunk(raw: Any, shape: Shape) -> dict[str, Any] | None:
    """A `chat.completion.chunk` from a backend's chunk; None when it has no choices
    (a usage-only or keep-alive chunk, which is never passed on)."""
    if not isinstance(raw, dict):
        raise Malformed("chunk is not a JSON object")
    choices = raw.get("choices")
    if not choices:
        return None
    if not isinstance(choices, list):
        raise Malformed("chunk choices is not a list")
    if plain_chunk(raw):
        return raw
    out_choices = []
    for position, choice in enumerate(choices):
        if not isinstance(choice, dict):
            raise Malformed("chunk choice is not an object")
        out_choices.append(
            {
                "index": choice.get("index", position),
                "delta": _delta(choice.get("delta") or {}),
                "finish_reason": _finish(choice.get("finish_reason"), shape),
                "logprobs": shape.logprobs(choice.get("logprobs"), choice),
            }
        )
    return _envelope(raw, "chat.completion.chunk", out_choices)
