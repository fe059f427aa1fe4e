"""What an OpenAI-dialect fake answers to one chat request, before any wire formatting:
text, JSON for `response_format`, or a tool call in one of the three formats Llama 4
deployments produce (native `tool_calls`, pythonic text, JSON text)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import orjson

from gateway.fakes.content import (
    SchemaError,
    choose_tool_call,
    chunk_string,
    count_tokens,
    example_from_schema,
    malformed,
    schema_invalid,
    split_text,
    text_pieces,
)
from gateway.fakes.script import Behaviour

Finish = Literal["stop", "length", "tool_calls"]
#: Characters per stream delta for JSON content and tool arguments.
JSON_DELTA_CHARS = 12
_EMPTY_OBJECT_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    #: The arguments text exactly as sent (invalid JSON when the behaviour asks for it).
    arguments: str


@dataclass(frozen=True, slots=True)
class Answer:
    """One choice's output. `finish` is the OpenAI value; a dialect may rename it on the wire
    (Together says "eos" for a natural stop)."""

    content: str | None
    #: `content` split into stream deltas.
    pieces: tuple[str, ...]
    tool_calls: tuple[ToolCall, ...]
    finish: Finish
    completion_tokens: int


def requested_max_tokens(body: dict[str, Any]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def response_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON Schema the answer must follow: OpenAI `json_schema`, Together's older
    `{"type": "json_schema", "schema": ...}`, or `json_object` (any object)."""
    fmt = body.get("response_format")
    if not isinstance(fmt, dict):
        return None
    kind = fmt.get("type")
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else fmt.get("schema")
        return schema if isinstance(schema, dict) else _EMPTY_OBJECT_SCHEMA
    if kind == "json_object":
        schema = fmt.get("schema")
        return schema if isinstance(schema, dict) else {"type": "object"}
    return None


@lru_cache(maxsize=1024)
def _example_json(schema_key: bytes, seed: int) -> str:
    schema = orjson.loads(schema_key)
    try:
        value = example_from_schema(schema, seed)
    except SchemaError:
        value = {}
    return orjson.dumps(value).decode()


def json_example(schema: Any, seed: int) -> str:
    """`example_from_schema` as JSON text, cached per (schema, seed): fakes answer the same
    tools over and over under load."""
    return _example_json(orjson.dumps(schema), seed)


def plan_text(body: dict[str, Any], behaviour: Behaviour) -> Answer:
    pieces = split_text(behaviour.text) if behaviour.text is not None else text_pieces(behaviour.completion_tokens)
    finish: Finish = "stop"
    limit = requested_max_tokens(body)
    if limit is not None and 0 < limit < len(pieces):
        pieces = pieces[:limit]
        finish = "length"
    content = "".join(pieces)
    return Answer(content, pieces, (), finish, len(pieces))


def plan_json(text: str) -> Answer:
    pieces = chunk_string(text, JSON_DELTA_CHARS)
    return Answer(text, pieces, (), "stop", count_tokens(text))


def _arguments(function: dict[str, Any], behaviour: Behaviour, seed: int) -> tuple[Any, str]:
    """The arguments value and the text sent for it, per `behaviour.tool_args`."""
    schema = function.get("parameters")
    schema = schema if isinstance(schema, dict) else _EMPTY_OBJECT_SCHEMA
    valid_text = json_example(schema, seed)
    valid = orjson.loads(valid_text)
    if behaviour.tool_args == "malformed":
        return valid, malformed(valid, seed)
    if behaviour.tool_args == "schema_invalid":
        try:
            broken = schema_invalid(valid, schema, seed)
        except SchemaError:
            broken = ["not", "an", "object"]
        return broken, orjson.dumps(broken).decode()
    return valid, valid_text


def _python_literal(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, str | int | float):
        return orjson.dumps(value).decode()
    if isinstance(value, list):
        return "[" + ", ".join(_python_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_python_literal(str(k))}: {_python_literal(v)}" for k, v in value.items()) + "}"
    return orjson.dumps(value).decode()


def pythonic_call(name: str, arguments: Any) -> str:
    """Llama 4's zero-shot tool format: `[get_weather(city="Paris", unit="c")]`."""
    if isinstance(arguments, dict):
        inner = ", ".join(f"{key}={_python_literal(value)}" for key, value in arguments.items())
    else:
        inner = f"arguments={_python_literal(arguments)}"
    return f"[{name}({inner})]"


def plan_tool_call(
    function: dict[str, Any],
    behaviour: Behaviour,
    *,
    seed: int,
    make_id: Callable[[], str],
) -> Answer:
    name = str(function["name"])
    value, arguments = _arguments(function, behaviour, seed)
    if behaviour.tool_format == "native":
        calls = tuple(ToolCall(make_id(), name, arguments) for _ in range(max(1, behaviour.tool_calls)))
        return Answer(None, (), calls, "tool_calls", len(calls) * count_tokens(name + arguments))
    if behaviour.tool_format == "pythonic":
        text = pythonic_call(name, value)
        if behaviour.tool_args == "malformed":
            text = text[: max(1, len(text) * 2 // 3)]
    else:
        text = '{"name": ' + orjson.dumps(name).decode() + ', "parameters": ' + arguments + "}"
    return Answer(text, chunk_string(text, JSON_DELTA_CHARS), (), "stop", count_tokens(text))


def request_seed(body: dict[str, Any]) -> int:
    seed = body.get("seed")
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else 0


def plan_answer(
    body: dict[str, Any],
    behaviour: Behaviour,
    *,
    make_tool_id: Callable[[], str],
    structured: str | None = None,
) -> Answer:
    """Tool call if the request's tools and tool_choice call for one, else JSON when a
    response format (or the dialect's own `structured` content) asks for it, else text.
    A behaviour that scripts the `text` gets it unless tool_choice forces a call."""
    seed = request_seed(body)
    tools = body.get("tools")
    tool_choice = body.get("tool_choice")
    forced = tool_choice == "required" or isinstance(tool_choice, dict)
    if tools and (behaviour.text is None or forced):
        function = choose_tool_call(tools, tool_choice, body.get("messages"))
        if function is not None:
            return plan_tool_call(function, behaviour, seed=seed, make_id=make_tool_id)
    if structured is not None:
        return plan_json(structured)
    schema = response_schema(body)
    if schema is not None:
        return plan_json(json_example(schema, seed))
    return plan_text(body, behaviour)
