"""A stream's chunks assembled into the whole answer it spelled out (pure). One form is
stored, so a streamed request and a whole one share an entry, and either is served from it
in the shape the client asked for (`gateway.api.cached` tells a whole answer as a stream)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: Finish reasons of an answer that ended on its own (a stream cut short has none).
COMPLETE = frozenset({"stop", "length", "tool_calls", "function_call"})


def complete(answer: dict[str, Any]) -> bool:
    """Every choice finished for a reason that says the model was done."""
    choices = answer.get("choices") or ()
    return bool(choices) and all(c.get("finish_reason") in COMPLETE for c in choices)


def _choice(choices: dict[int, dict[str, Any]], index: int) -> dict[str, Any]:
    if index not in choices:
        choices[index] = {
            "index": index,
            "message": {"role": "assistant", "content": None},
            "logprobs": None,
            "finish_reason": None,
        }
    return choices[index]


def _add_calls(message: dict[str, Any], deltas: Iterable[dict[str, Any]]) -> None:
    calls: list[dict[str, Any]] = message.setdefault("tool_calls", [])
    for delta in deltas:
        index = delta.get("index", len(calls))
        while len(calls) <= index:
            calls.append({"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
        call = calls[index]
        if delta.get("id"):
            call["id"] = delta["id"]
        function = delta.get("function") or {}
        call["function"]["name"] += function.get("name") or ""
        call["function"]["arguments"] += function.get("arguments") or ""


def assemble(chunks: list[dict[str, Any]], usage: dict[str, Any]) -> dict[str, Any] | None:
    """The chat.completion a complete stream amounts to; None when it cannot be told again
    faithfully (no chunks, a choice that never finished, or logprobs)."""
    if not chunks:
        return None
    choices: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for part in chunk.get("choices") or ():
            if part.get("logprobs"):
                return None
            choice = _choice(choices, int(part.get("index", 0)))
            delta = part.get("delta") or {}
            message = choice["message"]
            if delta.get("content"):
                message["content"] = (message["content"] or "") + delta["content"]
            if delta.get("refusal"):
                message["refusal"] = (message.get("refusal") or "") + delta["refusal"]
            if delta.get("tool_calls"):
                _add_calls(message, delta["tool_calls"])
            if part.get("finish_reason"):
                choice["finish_reason"] = part["finish_reason"]
    first = chunks[0]
    answer = {
        "id": first.get("id", ""),
        "object": "chat.completion",
        "created": first.get("created", 0),
        "model": first.get("model", ""),
        "choices": [choices[i] for i in sorted(choices)],
        "usage": usage,
    }
    return answer if complete(answer) else None
