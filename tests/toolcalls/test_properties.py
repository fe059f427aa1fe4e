"""Properties over generated schemas and matching values (hypothesis, schema and value drawn together):
a valid call is never altered; a repaired call always validates and carries the model's
values unchanged; the fast validity check never accepts what jsonschema rejects."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import orjson
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from gateway.toolcalls import Action, ToolGuard, prepare
from gateway.toolcalls.quick_check import compile_fast
from tests.toolcalls.helpers import call, completion, tool

SETTINGS = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
KEYS = st.sampled_from(["city", "unit", "days", "q", "tags", "it's", "a b", 'say "hi"', "émoji", "x1"])
TEXT = st.text(max_size=10)
Node = tuple[dict[str, Any], st.SearchStrategy[Any]]


def _leaf(draw: st.DrawFn) -> Node:
    """A leaf schema and a strategy for values it accepts."""
    kind = draw(st.integers(0, 11))
    if kind == 0:
        return {"type": "string"}, TEXT
    if kind == 1:
        most = draw(st.integers(1, 12))
        return {"type": "string", "maxLength": most}, st.text(max_size=most)
    if kind == 2:
        values = draw(st.lists(TEXT, min_size=1, max_size=4, unique=True))
        return {"type": "string", "enum": values}, st.sampled_from(values)
    if kind == 3:
        return {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{2}$"}, st.from_regex(r"\A[A-Z]{3}-[0-9]{2}\Z")
    if kind == 4:
        return {"type": "string", "format": "date"}, st.dates().map(lambda day: day.isoformat())
    if kind == 5:
        low, span = draw(st.integers(-50, 50)), draw(st.integers(0, 100))
        return {"type": "integer", "minimum": low, "maximum": low + span}, st.integers(low, low + span)
    if kind == 6:
        return {"type": "number"}, st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**6), 10**6)
    if kind == 7:
        return {"type": "number", "exclusiveMinimum": 0}, st.floats(min_value=0.001, max_value=1e6)
    if kind == 8:
        return {"type": "boolean"}, st.booleans()
    if kind == 9:
        return {"type": ["string", "null"]}, st.none() | TEXT
    if kind == 10:
        return {"enum": [1, "one", None, True]}, st.sampled_from([1, "one", None, True])
    return {"const": "fixed"}, st.just("fixed")


def _object(draw: st.DrawFn, depth: int) -> Node:
    names = draw(st.lists(KEYS, max_size=4, unique=True))
    children = {name: _node(draw, depth + 1) for name in names}
    required = [name for name in names if draw(st.booleans())]
    closed = draw(st.booleans())
    schema = {
        "type": "object",
        "properties": {name: child[0] for name, child in children.items()},
        "required": required,
        "additionalProperties": not closed,
    }
    fixed = {name: children[name][1] for name in required}
    optional = {name: children[name][1] for name in names if name not in required}
    return schema, st.fixed_dictionaries(fixed, optional=optional)


def _array(draw: st.DrawFn, depth: int) -> Node:
    items, values = _node(draw, depth + 1)
    most = draw(st.integers(0, 4))
    return {"type": "array", "items": items, "maxItems": most}, st.lists(values, max_size=most)


def _node(draw: st.DrawFn, depth: int) -> Node:
    shape = draw(st.integers(0, 2)) if depth < 3 else 0
    if shape == 1:
        return _object(draw, depth)
    if shape == 2:
        return _array(draw, depth)
    return _leaf(draw)


@st.composite
def schema_and_value(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A tool parameters schema and a value it accepts, generated together."""
    schema, values = _object(draw, 0)
    value = draw(values)
    assert Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).is_valid(value)
    return schema, value


SCHEMAS = st.builds(lambda pair: pair[0], schema_and_value())


def check(schema: dict[str, Any], arguments: str) -> tuple[ToolGuard, Any]:
    guard = ToolGuard(prepare({"messages": [], "tools": [tool("f", schema)]}), "repair")
    answer = completion(tool_calls=[call("f", arguments)])
    return guard, (guard.check(answer), answer)


SPELLINGS = st.sampled_from(
    [
        lambda v: orjson.dumps(v).decode(),
        json.dumps,
        lambda v: json.dumps(v, indent=2, ensure_ascii=False),
        lambda v: json.dumps(v, separators=(",", ":"), ensure_ascii=True),
    ]
)


@SETTINGS
@given(schema_and_value(), SPELLINGS)
def test_a_valid_call_is_never_altered(pair: tuple[dict[str, Any], dict[str, Any]], spell: Any) -> None:
    schema, value = pair
    arguments = spell(value)
    guard, (decision, answer) = check(schema, arguments)
    assert decision.action is Action.DELIVER, guard.errors
    assert decision.body == answer
    assert decision.body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] is arguments
    assert guard.verdict == "valid"


_STRING = re.compile(r""""(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'""", re.DOTALL)


def _outside_strings(change: Callable[[str], str]) -> Callable[[str], str]:
    """Apply a syntax change only between string literals, so values stay as they were."""

    def apply(text: str) -> str:
        parts, last = [], 0
        for match in _STRING.finditer(text):
            parts += [change(text[last : match.start()]), match.group()]
            last = match.end()
        return "".join([*parts, change(text[last:])])

    return apply


@_outside_strings
def _trailing_commas(text: str) -> str:
    return re.sub(r"(?<=[^\[{\s,])(\s*)([}\]])", r",\1\2", text)


@_outside_strings
def _python_literals(text: str) -> str:
    return text.replace("true", "True").replace("false", "False").replace("null", "None")


CORRUPTIONS = st.sampled_from(
    [
        _trailing_commas,
        _python_literals,
        lambda text: text[:-1],
        lambda text: "```json\n" + text + "\n```",
        lambda text: "Here are the arguments you asked for: " + text + " Let me know!",
    ]
)


@SETTINGS
@given(schema_and_value(), CORRUPTIONS, st.booleans())
def test_a_repaired_call_validates_and_keeps_the_values(
    pair: tuple[dict[str, Any], dict[str, Any]], corrupt: Any, python_repr: bool
) -> None:
    schema, value = pair
    broken = corrupt(repr(value) if python_repr else json.dumps(value, ensure_ascii=False))
    assume(broken != orjson.dumps(value).decode())
    guard, (decision, _) = check(schema, broken)
    if decision.action is not Action.DELIVER:
        return
    delivered = orjson.loads(decision.body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"])
    assert Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).is_valid(delivered)
    assert delivered == value
    assert guard.verdict in ("valid", "repaired")


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-100, 100)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=10,
)


@SETTINGS
@given(SCHEMAS, JSON_VALUES)
def test_fast_check_never_accepts_what_jsonschema_rejects(schema: dict[str, Any], instance: Any) -> None:
    formats = Draft202012Validator.FORMAT_CHECKER
    fast = compile_fast(schema, Draft202012Validator, formats)
    assert fast is not None
    if fast(instance):
        assert Draft202012Validator(schema, format_checker=formats).is_valid(instance)


@SETTINGS
@given(schema_and_value())
def test_fast_check_accepts_typical_valid_values(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    schema, value = pair
    fast = compile_fast(schema, Draft202012Validator, Draft202012Validator.FORMAT_CHECKER)
    assert fast is not None
    assume(not _has_float_integer(value))
    assert fast(value)


def _has_float_integer(value: Any) -> bool:
    """1.0 and 1 are equal in JSON Schema; the fast check leaves such mixtures to jsonschema."""
    if isinstance(value, dict):
        return any(_has_float_integer(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_float_integer(item) for item in value)
    return isinstance(value, float) and value.is_integer()
