"""Re-asking the same deployment after an invalid reply.

`reask_messages` replays the conversation with the invalid reply and the validator's
errors tied to each `tool_call_id`, ending with "Fix the errors and try again." (the
pattern pydantic-ai uses). Calls that cannot be replayed as structured tool calls (an
undeclared name, arguments that are not a JSON object: several backends refuse such
history) are quoted in the assistant text instead. When there is at least one tool
message, the closing instruction goes into the last one rather than a separate user
turn, so backends that insist on alternating roles accept the conversation.

`structured_constraint` gives the request fields that make a vLLM answer valid by
construction: the reply is constrained to `{"name": <function>, "parameters": {...}}`,
which `recognise` turns into a proper tool call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from gateway.toolcalls.contract import Contract
from gateway.toolcalls.model import Attempt, CallCheck

__all__ = ["envelope", "reask_messages", "structured_constraint"]

CLOSING = "Fix the errors and try again."
_REF_ROOTS = ("#/$defs/", "#/definitions/")


def reask_messages(messages: Sequence[Mapping[str, Any]], attempt: Attempt) -> list[dict[str, Any]]:
    """`messages` + the assistant's invalid reply + tool/user messages with the errors."""
    replayed = [call for call in attempt.calls if call.replayable]
    quoted = [call for call in attempt.calls if not call.replayable]
    assistant: dict[str, Any] = {"role": "assistant", "content": _assistant_text(attempt, quoted)}
    if replayed:
        assistant["tool_calls"] = [call.as_tool_call() for call in replayed]
    out = [dict(message) for message in messages]
    out.append(assistant)
    out.extend({"role": "tool", "tool_call_id": call.id, "content": _tool_result(call)} for call in replayed)
    closing = _closing(attempt, replayed)
    if replayed:
        out[-1]["content"] += "\n\n" + closing
    else:
        out.append({"role": "user", "content": closing})
    return out


def _assistant_text(attempt: Attempt, quoted: Iterable[CallCheck]) -> str | None:
    lines = [f"{call.name}({call.raw_arguments})" for call in quoted]
    if not lines and not attempt.calls:
        content = attempt.original.get("content")
        return content if isinstance(content, str) and content else None
    return "\n".join(lines) or None


def _tool_result(call: CallCheck) -> str:
    if call.delivered:
        return "Accepted; this call has been made. Do not repeat it."
    if call.errors:
        return "Error: the call was rejected:\n" + "\n".join(f"- {error}" for error in call.errors)
    return "Not executed: the reply as a whole was rejected."


def _closing(attempt: Attempt, replayed: Sequence[CallCheck]) -> str:
    shown = {call.label() for call in replayed}
    rest = [error for error in attempt.errors if error.split(":", 1)[0] not in shown]
    lines = ["Your previous reply was rejected:", *(f"- {error}" for error in rest)] if rest else []
    if attempt.calls:
        lines.append("Call the tool again with corrected arguments.")
    elif any(error.startswith("tool_choice") for error in attempt.reply_errors):
        lines.append("Call the tool now, with arguments that match its schema.")
    else:
        lines.append("Reply again with only the JSON value the response format requires.")
    lines.append(CLOSING)
    return "\n".join(lines)


def structured_constraint(contract: Contract, attempt: Attempt | None = None) -> dict[str, Any] | None:
    """Fields to merge into a vLLM request so its answer is valid by construction, or
    None when the answer may legitimately be free text (tool_choice auto and no failed
    call), when a schema cannot be wrapped, or when only a response_format is asked for
    (vLLM already enforces that itself).

    One function: `response_format` json_schema over `envelope(name)`. Several: vLLM's
    `structured_outputs: {"json": ...}` over their `anyOf` (an array of them when
    parallel calls are allowed). tool_choice becomes `auto` so vLLM's own tool grammar
    does not compete. Check the answer with the request's original contract: the reply
    `{"name": …, "parameters": …}` is recognised as a tool call. The result is a fresh
    copy, safe to merge into a request body.
    """
    names = _constrained_names(contract, attempt)
    shapes = [envelope(name, contract.tools[name].schema) for name in names]
    if not shapes or any(shape is None for shape in shapes):
        return None
    if len(shapes) == 1:
        spec = {"name": names[0], "schema": shapes[0], "strict": True}
        fields = {"tool_choice": "auto", "response_format": {"type": "json_schema", "json_schema": spec}}
        return _copy(fields)
    definitions = _merged_definitions(shapes)
    if definitions is None:
        return None
    one: dict[str, Any] = {"anyOf": shapes}
    many = {"type": "array", "items": one, "minItems": 1} if contract.parallel else one
    return _copy({"tool_choice": "auto", "structured_outputs": {"json": {**many, **definitions}}})


def _copy(fields: dict[str, Any]) -> dict[str, Any]:
    """A deep copy, so nothing merged into a request shares objects with cached schemas."""
    copied: dict[str, Any] = orjson.loads(orjson.dumps(fields))
    return copied


def _merged_definitions(shapes: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """Lift every envelope's `$defs`/`definitions` to the root, where `#/$defs/…`
    resolves; None when two functions define the same name differently."""
    merged: dict[str, dict[str, Any]] = {}
    for shape in shapes:
        for key in ("$defs", "definitions"):
            for name, definition in (shape or {}).pop(key, {}).items():
                if merged.setdefault(key, {}).setdefault(name, definition) != definition:
                    return None
    return merged


def _constrained_names(contract: Contract, attempt: Attempt | None) -> list[str]:
    if attempt is not None:
        failed = [call.name for call in attempt.calls if call.errors and call.declared]
        if failed:
            return sorted(set(failed))
    if contract.choice.kind in ("required", "function"):
        return list(contract.allowed_names())
    return []


def envelope(name: str, parameters: Any) -> dict[str, Any] | None:
    """`{"name": name, "parameters": <schema>}` as one schema, with `$defs` hoisted so
    local references still resolve; None if the schema refers elsewhere."""
    if not isinstance(parameters, dict):
        parameters = {} if parameters is True else {"not": {}}
    if not all(ref.startswith(_REF_ROOTS) for ref in _refs(parameters)):
        return None
    body = {key: value for key, value in parameters.items() if key not in ("$defs", "definitions", "$schema", "$id")}
    shape: dict[str, Any] = {
        "type": "object",
        "properties": {"name": {"const": name}, "parameters": body},
        "required": ["name", "parameters"],
        "additionalProperties": False,
    }
    for key in ("$defs", "definitions"):
        if key in parameters:
            shape[key] = parameters[key]
    return shape


def _refs(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)
