"""Check one assistant reply against the request's contract.

Per call (`calls.check_call`): declared name, JSON-object arguments, schema. Per reply:
tool_choice (`required` needs a call, a named function only that one, `none` no call),
parallel_tool_calls false (at most one call), and response_format (content that parses,
and validates against the json_schema). With `repair=True` calls written as text are
recognised and syntax is repaired; with `repair=False` (report mode) the same problems
are only listed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from gateway.toolcalls.calls import check_call
from gateway.toolcalls.contract import Contract
from gateway.toolcalls.model import Attempt, CallCheck, to_json
from gateway.toolcalls.recognise import TextCalls, recognise
from gateway.toolcalls.repair import repair_json

__all__ = ["check_calls", "check_message", "check_output", "reply_errors"]


def check_message(
    contract: Contract,
    message: Mapping[str, Any],
    finish_reason: str | None,
    *,
    repair: bool,
    new_id: Callable[[], str],
    prior_calls: int = 0,
    read_text_calls: bool = True,
) -> Attempt:
    """Check (and with `repair`, fix) one assistant message.

    `prior_calls` counts calls already delivered by earlier attempts of a stream (for
    the tool_choice and parallel rules); `read_text_calls=False` leaves content alone
    (a stream whose text already went out live).
    """
    original = dict(message)
    raw_calls = message.get("tool_calls") or []
    content = message.get("content")
    readable = read_text_calls and not raw_calls and _may_call(contract, content)
    text = recognise(content, contract.tools) if readable and isinstance(content, str) else None
    calls, repairs, errors = _calls(contract, raw_calls, text, repair, new_id)
    out = dict(message)
    if calls and (text is not None or any(call.repairs for call in calls)):
        out["tool_calls"] = [call.as_tool_call() for call in calls]
    if text is not None and text.calls and repair:
        out["content"] = None
        finish_reason = "tool_calls"
    elif not calls and contract.output_kind is not None:
        fixed, content_errors, content_repairs = check_output(contract, content, repair=repair)
        out["content"] = fixed
        errors.extend(content_errors)
        repairs.extend(content_repairs)
    whole = reply_errors(contract, prior_calls + len(calls))
    errors.extend(whole)
    for call in calls:
        errors.extend(f"{call.label()}: {error}" for error in call.errors)
        repairs.extend(f"{call.label()}: {note}" for note in call.repairs)
    fixed = out if repairs else original
    return Attempt(original, fixed, finish_reason, tuple(calls), tuple(errors), tuple(repairs), tuple(whole))


def _may_call(contract: Contract, content: Any) -> bool:
    return contract.calls_allowed and isinstance(content, str) and bool(content.strip())


def _calls(
    contract: Contract,
    raw_calls: list[Any],
    text: TextCalls | None,
    repair: bool,
    new_id: Callable[[], str],
) -> tuple[list[CallCheck], list[str], list[str]]:
    if text is None:
        return check_calls(contract, raw_calls, repair=repair), [], []
    if text.error is not None:
        return [], [], [f"content: {text.error}"]
    if not repair:
        return [], [], [f"content: {len(text.calls)} tool call(s) written as text ({text.source}), not as tool_calls"]
    calls = [
        check_call(contract, i, new_id(), name, raw, allowed=contract.allowed_names(), repair=True, source=text.source)
        for i, (name, raw) in enumerate(text.calls)
    ]
    note = f"content: {len(calls)} tool call(s) written as text ({text.source}) turned into tool_calls"
    return calls, [note + (" after syntax repair" if text.repaired else "")], []


def check_calls(contract: Contract, raw_calls: list[Any], *, repair: bool, offset: int = 0) -> list[CallCheck]:
    """Check OpenAI-shaped `tool_calls` entries (numbered from `offset`)."""
    allowed = contract.allowed_names()
    checks = []
    for position, call in enumerate(raw_calls):
        call_id, name, raw = _parts(call)
        checks.append(check_call(contract, offset + position, call_id, name, raw, allowed=allowed, repair=repair))
    return checks


def _parts(call: Any) -> tuple[str, str, str]:
    """(id, name, arguments text) of an OpenAI tool call, tolerating odd shapes."""
    call = call if isinstance(call, Mapping) else {}
    function = call.get("function")
    function = function if isinstance(function, Mapping) else {}
    call_id, name, raw = call.get("id"), function.get("name"), function.get("arguments")
    if not isinstance(raw, str):
        raw = "" if raw is None else (to_json(raw) or "")
    return (call_id if isinstance(call_id, str) else ""), (name if isinstance(name, str) else ""), raw


def reply_errors(contract: Contract, count: int) -> list[str]:
    """tool_choice and parallel_tool_calls rules for a reply with `count` calls."""
    errors = []
    kind = contract.choice.kind
    if count == 0 and kind == "required":
        errors.append("tool_choice is 'required' but the reply calls no tool")
    elif count == 0 and kind == "function":
        errors.append(f"tool_choice forces {contract.choice.name!r} but the reply calls no tool")
    if count > 1 and not contract.parallel:
        errors.append(f"parallel_tool_calls is false but the reply makes {count} tool calls")
    return errors


def check_output(contract: Contract, content: Any, *, repair: bool) -> tuple[Any, list[str], list[str]]:
    """(content to deliver, errors, repair notes) for a response_format reply."""
    if not isinstance(content, str) or not content.strip():
        return content, ["content: response_format asks for JSON but the reply has no content"], []
    try:
        value = orjson.loads(content)
        fixed = content
        repairs: list[str] = []
    except orjson.JSONDecodeError as exc:
        if not repair:
            return content, [f"content: not valid JSON: {exc}"], []
        outcome = repair_json(content, openers="{[")
        written = to_json(outcome.value) if outcome.ok else None
        if written is None:
            return content, [f"content: not valid JSON ({exc}); {outcome.reason or 'not repaired'}"], []
        value, fixed, repairs = outcome.value, written, ["content: JSON syntax repaired"]
    errors = _output_errors(contract, value)
    return (fixed, errors, repairs) if not errors else (content, errors, [])


def _output_errors(contract: Contract, value: Any) -> list[str]:
    if contract.output is not None:
        return [] if contract.output.is_valid(value) else [f"content: {e}" for e in contract.output.errors(value)]
    if not isinstance(value, dict):
        return ["content: response_format json_object asks for a JSON object"]
    return []
