"""The parameter policy applied to one request body at the edge, before validation.

MAPPED fields become their targets, IGNORED ones are taken out (and remembered for the
`x-corral-ignored-params` header), REFUSED_WHEN fields are checked and taken out, so
the body the router and adapters see holds only FORWARD and EMULATED fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.errors import Code, GatewayError, bad_request
from gateway.schema.params import PARAMETERS, Handling, ignored_in, refusal

__all__ = ["Applied", "apply_policy", "legacy_answer", "legacy_chunk"]

_REFUSABLE = tuple(k for k, p in PARAMETERS.items() if p.handling is Handling.REFUSED_WHEN)


@dataclass(frozen=True, slots=True)
class Applied:
    cache_key: str | None = None
    ignored: tuple[str, ...] = ()
    legacy_functions: bool = False


def apply_policy(body: dict[str, Any]) -> Applied:
    """Rewrite `body` in place per the policy; raises a 400 `GatewayError` for a refused value."""
    refused = refusal(body)
    if refused is not None:
        name, reason = refused
        raise bad_request(f"'{name}' asks for {reason}", param=name, code=Code.UNSUPPORTED_PARAMETER)
    for name in _REFUSABLE:
        body.pop(name, None)
    ignored = ignored_in(body)
    for name in ignored:
        del body[name]
    legacy = _legacy_functions(body)
    safety = body.pop("safety_identifier", None)
    if safety is not None and "user" not in body:
        body["user"] = safety
    cache_key = body.pop("prompt_cache_key", None)
    if cache_key is not None and not isinstance(cache_key, str):
        raise bad_request("invalid value for 'prompt_cache_key': expected a string", param="prompt_cache_key")
    return Applied(cache_key or None, ignored, legacy)


def _legacy_functions(body: dict[str, Any]) -> bool:
    """`functions` -> `tools`, `function_call` -> `tool_choice` (OpenAI's deprecated pair)."""
    functions = body.pop("functions", None)
    call = body.pop("function_call", None)
    if functions is None:
        if call is not None:
            raise bad_request("'function_call' needs 'functions'", param="function_call")
        return False
    if "tools" in body or "tool_choice" in body:
        raise _both("functions' / 'function_call", "tools' / 'tool_choice")
    if not isinstance(functions, list):
        raise bad_request("invalid value for 'functions': expected a list", param="functions")
    body["tools"] = [{"type": "function", "function": f} for f in functions]
    if call in ("none", "auto"):
        body["tool_choice"] = call
    elif isinstance(call, dict) and isinstance(call.get("name"), str):
        body["tool_choice"] = {"type": "function", "function": {"name": call["name"]}}
    elif call is not None:
        raise bad_request("invalid value for 'function_call': 'none', 'auto' or {'name': ...}", param="function_call")
    # The legacy API answers with one call at most.
    body["parallel_tool_calls"] = False
    if isinstance(body.get("messages"), list):
        body["messages"] = _legacy_messages(body["messages"])
    return True


def _legacy_messages(messages: list[Any]) -> list[Any]:
    """An assistant's `function_call` -> one `tool_calls` entry, and the `function`-role
    reply after it -> a `tool` message answering that call."""
    out: list[Any] = []
    last_id = ""
    for position, message in enumerate(messages):
        if not isinstance(message, dict):
            out.append(message)
            continue
        call = message.get("function_call")
        if message.get("role") == "assistant" and isinstance(call, dict):
            last_id = f"call_legacy_{position}"
            rest = {k: v for k, v in message.items() if k != "function_call"}
            out.append({**rest, "tool_calls": [{"id": last_id, "type": "function", "function": call}]})
        elif message.get("role") == "function":
            out.append(
                {
                    "role": "tool",
                    "tool_call_id": last_id or f"call_legacy_{position}",
                    "content": message.get("content") or "",
                }
            )
        else:
            out.append(message)
    return out


def _both(legacy: str, current: str) -> GatewayError:
    return bad_request(f"send either '{legacy}' or '{current}', not both", param="functions")


def legacy_answer(body: dict[str, Any]) -> dict[str, Any]:
    """A chat.completion for a `functions` request: each choice's first tool call is also
    given as `message.function_call` (finish_reason `function_call`), as OpenAI answers it."""
    for choice in body.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        calls = message.get("tool_calls") if isinstance(message, dict) else None
        if isinstance(message, dict) and isinstance(calls, list) and calls and isinstance(calls[0], dict):
            message["function_call"] = calls[0].get("function")
            choice["finish_reason"] = "function_call"
    return body


def legacy_chunk(chunk: dict[str, Any]) -> dict[str, Any]:
    """A stream chunk for a `functions` request: the first call's deltas also as
    `delta.function_call`, finish_reason `function_call`, as OpenAI streams it."""
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") if isinstance(choice, dict) else None
        calls = delta.get("tool_calls") if isinstance(delta, dict) else None
        if isinstance(delta, dict) and isinstance(calls, list):
            first = next((c for c in calls if isinstance(c, dict) and c.get("index", 0) == 0), None)
            function = first.get("function") if first is not None else None
            if isinstance(function, dict):
                delta["function_call"] = {k: function[k] for k in ("name", "arguments") if k in function}
        if isinstance(choice, dict) and choice.get("finish_reason") == "tool_calls":
            choice["finish_reason"] = "function_call"
    return chunk
