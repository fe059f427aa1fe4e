"""Check one tool call: declared name, arguments that parse as a JSON object, arguments
that validate against the function's schema. A call that is valid as sent is returned
with its arguments text untouched; repair is tried only when the text does not parse.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import orjson

from gateway.toolcalls.contract import Contract
from gateway.toolcalls.model import CallCheck, Source, to_json
from gateway.toolcalls.repair import repair_json

__all__ = ["check_call"]


def check_call(
    contract: Contract,
    index: int,
    call_id: str,
    name: str,
    raw: str,
    *,
    allowed: Collection[str],
    repair: bool,
    source: Source = "tool_calls",
) -> CallCheck:
    """Check one call. `allowed` is the names tool_choice permits."""
    value, repairs, problem = _arguments(raw, repair)
    arguments = to_json(value) if repairs else raw
    if arguments is None:
        value, repairs, problem, arguments = None, [], "the repaired arguments cannot be written as JSON", raw
    errors = [problem] if problem is not None else []
    schema = contract.tools.get(name)
    if schema is None:
        errors.insert(0, f"unknown function {name!r}; declared: {', '.join(contract.tools) or 'none'}")
    elif name not in allowed:
        errors.insert(0, _not_allowed(contract, name))
    if schema is not None and isinstance(value, dict) and not schema.is_valid(value):
        errors.extend(schema.errors(value))
    parsed = isinstance(value, dict)
    return CallCheck(
        index, call_id, name, raw, arguments, tuple(errors), tuple(repairs), source, parsed, declared=schema is not None
    )


def _not_allowed(contract: Contract, name: str) -> str:
    if contract.choice.kind == "none":
        return f"tool_choice is 'none'; {name!r} may not be called"
    return f"tool_choice forces {contract.choice.name!r}; {name!r} may not be called"


def _arguments(raw: str, repair: bool) -> tuple[Any, list[str], str | None]:
    """(value, repair notes, problem): the parsed arguments object or why there is none."""
    if not raw.strip():
        return ({}, ["empty arguments read as {}"], None) if repair else (None, [], "arguments are empty")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return _repaired(raw, str(exc)) if repair else (None, [], f"arguments are not valid JSON: {exc}")
    if isinstance(value, str) and repair:
        return _unwrap(value)
    if not isinstance(value, dict):
        return value, [], f"arguments must be a JSON object, not {_kind(value)}"
    return value, [], None


def _repaired(raw: str, strict_error: str) -> tuple[Any, list[str], str | None]:
    fixed = repair_json(raw)
    if not fixed.ok:
        return None, [], f"arguments are not valid JSON and were {fixed.reason}"
    if not isinstance(fixed.value, dict):
        return None, [], f"arguments are not a JSON object ({strict_error})"
    return fixed.value, ["arguments JSON syntax repaired"], None


def _unwrap(text: str) -> tuple[Any, list[str], str | None]:
    """Arguments sent as a JSON string that itself holds the JSON object."""
    try:
        inner = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text, [], "arguments must be a JSON object, not a string"
    if not isinstance(inner, dict):
        return text, [], "arguments must be a JSON object, not a string"
    return inner, ["arguments were JSON-encoded twice; decoded once"], None


def _kind(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
