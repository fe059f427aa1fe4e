"""The pure helpers behind the fakes' answers: text, token counts, schema examples, tool choice."""

from __future__ import annotations

import random
import re
from typing import Any

import jsonschema
import orjson
import pytest

from gateway.fakes.content import (
    SchemaError,
    choose_tool_call,
    count_prompt_tokens,
    example_from_schema,
    generate_text,
    malformed,
    regex_example,
    schema_invalid,
    split_text,
    text_pieces,
)
from tests.fakes import SEARCH_TOOL, WEATHER_TOOL

SCHEMAS: list[tuple[str, Any]] = [
    ("object with required and enum", WEATHER_TOOL["function"]["parameters"]),
    ("type list with null", {"type": ["null", "string"], "minLength": 12}),
    ("integer with exclusive maximum", {"type": "integer", "minimum": 5, "exclusiveMaximum": 6}),
    ("number in open interval", {"type": "number", "exclusiveMinimum": 0, "maximum": 1}),
    ("decimal multipleOf", {"type": "number", "multipleOf": 0.01, "minimum": 0.05}),
    ("integer multipleOf in range", {"type": "integer", "multipleOf": 7, "minimum": 10, "maximum": 20}),
    ("pattern with repeats and groups", {"type": "string", "pattern": r"^[A-Z]{2}-\d{3,5}(foo|bar)?$"}),
    ("phone pattern", {"type": "string", "pattern": r"^(\([0-9]{3}\))?[0-9]{3}-[0-9]{4}$"}),
    ("pattern with negated class", {"type": "string", "pattern": r"^[^a-z]{4}$"}),
    ("pattern meeting minLength", {"type": "string", "pattern": "^a+$", "minLength": 9}),
    ("date", {"type": "string", "format": "date"}),
    ("date-time", {"type": "string", "format": "date-time"}),
    ("email", {"type": "string", "format": "email"}),
    ("uri", {"type": "string", "format": "uri"}),
    ("uuid", {"type": "string", "format": "uuid"}),
    ("maxLength", {"type": "string", "maxLength": 3}),
    ("minLength", {"type": "string", "minLength": 20}),
    ("anyOf", {"anyOf": [{"type": "null"}, {"type": "integer", "minimum": 3}]}),
    ("oneOf", {"oneOf": [{"type": "string"}, {"type": "integer"}]}),
    ("oneOf of objects", {"oneOf": [{"type": "object", "required": ["a"]}, {"type": "array"}]}),
    (
        "allOf",
        {
            "allOf": [
                {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                {"properties": {"b": {"const": "x"}}, "required": ["b"]},
            ]
        },
    ),
    (
        "$defs ref in array",
        {
            "$defs": {
                "pt": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]},
            },
            "type": "array",
            "items": {"$ref": "#/$defs/pt"},
            "minItems": 2,
            "maxItems": 3,
        },
    ),
    (
        "recursive definitions",
        {
            "definitions": {
                "node": {
                    "type": "object",
                    "properties": {
                        "v": {"type": "integer"},
                        "children": {"type": "array", "items": {"$ref": "#/definitions/node"}},
                    },
                    "required": ["v", "children"],
                }
            },
            "$ref": "#/definitions/node",
        },
    ),
    ("unique enum items", {"type": "array", "items": {"enum": [1, 2, 3]}, "uniqueItems": True, "minItems": 3}),
    ("tuple", {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": False}),
    ("minProperties", {"type": "object", "minProperties": 3}),
    (
        "patternProperties only",
        {
            "type": "object",
            "required": ["x-1"],
            "patternProperties": {"^x-": {"type": "integer"}},
            "additionalProperties": False,
        },
    ),
    (
        "draft-04 boolean exclusiveMinimum",
        {
            "$schema": "http://json-schema.org/draft-04/schema#",
            "type": "integer",
            "minimum": 1,
            "exclusiveMinimum": True,
            "maximum": 2,
        },
    ),
    ("contains", {"type": "array", "contains": {"type": "integer", "minimum": 100}, "items": {"type": "integer"}}),
    ("const", {"const": {"a": 1}}),
    ("enum of mixed values", {"enum": [None, 3, "three"]}),
    ("not", {"not": {"type": "string"}}),
    ("true schema", True),
    ("empty schema", {}),
    (
        "nested objects, no extra properties",
        {
            "type": "object",
            "properties": {
                "user": {
                    "type": "object",
                    "properties": {"email": {"type": "string", "format": "email"}, "age": {"type": "integer"}},
                    "required": ["email"],
                    "additionalProperties": False,
                }
            },
            "required": ["user"],
            "additionalProperties": False,
        },
    ),
]


def _validate(value: Any, schema: Any) -> None:
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls(schema, format_checker=cls.FORMAT_CHECKER).validate(value)


@pytest.mark.parametrize(("name", "schema"), SCHEMAS, ids=[name for name, _ in SCHEMAS])
def test_example_from_schema_is_valid(name: str, schema: Any) -> None:
    for seed in range(4):
        _validate(example_from_schema(schema, seed), schema)


def test_example_from_schema_is_deterministic_per_seed() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}, "id": {"type": "string", "format": "uuid"}}}
    assert example_from_schema(schema, 7) == example_from_schema(schema, 7)


def test_example_from_schema_uses_plausible_values_for_known_names() -> None:
    assert example_from_schema(WEATHER_TOOL["function"]["parameters"])["city"] == "Paris"


def test_example_from_schema_refuses_impossible_schemas() -> None:
    with pytest.raises(SchemaError):
        example_from_schema(False)
    with pytest.raises(SchemaError):
        example_from_schema({"type": "integer", "minimum": 5, "maximum": 4})


@pytest.mark.parametrize("pattern", [r"^\d{4}-\d{2}$", r"[A-Fa-f0-9]{8}", r"^(ab|cd)+x?$", r"^(\w+)@\1\.com$"])
def test_regex_example_matches(pattern: str) -> None:
    rng = random.Random(3)
    for _ in range(5):
        assert re.fullmatch(pattern, regex_example(pattern, rng))


def test_text_is_deterministic_and_split_into_word_pieces() -> None:
    pieces = text_pieces(20)
    assert len(pieces) == 20
    assert "".join(pieces) == generate_text(20)
    assert pieces[0] == pieces[0].lstrip() and all(p.startswith(" ") for p in pieces[1:])
    assert generate_text(20) == generate_text(20)
    assert generate_text(0) == ""


def test_split_text_round_trips() -> None:
    for text in ("Hello  world, this is it. ", "one", "", "  leading"):
        assert "".join(split_text(text)) == text


def test_prompt_tokens_count_text_and_images() -> None:
    messages = [
        {"role": "system", "content": "x" * 400},
        {
            "role": "user",
            "content": [{"type": "text", "text": "y" * 40}, {"type": "image_url", "image_url": {"url": "data:,"}}],
        },
    ]
    assert count_prompt_tokens(messages) == 110 + 600
    assert count_prompt_tokens([{"role": "user", "content": ""}]) == 1


TOOLS = [WEATHER_TOOL, SEARCH_TOOL]


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def test_named_tool_choice_calls_that_tool() -> None:
    choice = {"type": "function", "function": {"name": "search_web"}}
    found = choose_tool_call(TOOLS, choice, _user("weather in Paris?"))
    assert found is not None and found["name"] == "search_web"


def test_auto_calls_the_best_overlapping_tool() -> None:
    weather = choose_tool_call(TOOLS, "auto", _user("What's the weather in Paris?"))
    search = choose_tool_call(TOOLS, None, _user("Search the web for llama facts"))
    assert weather is not None and weather["name"] == "get_weather"
    assert search is not None and search["name"] == "search_web"


def test_auto_answers_in_text_without_overlap_or_after_a_tool_result() -> None:
    assert choose_tool_call(TOOLS, "auto", _user("Good morning!")) is None
    after_tool = [
        *_user("weather in Paris?"),
        {"role": "assistant", "content": None, "tool_calls": []},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    assert choose_tool_call(TOOLS, "auto", after_tool) is None


def test_required_always_calls_and_none_never_does() -> None:
    assert choose_tool_call(TOOLS, "required", _user("Good morning!")) is not None
    assert choose_tool_call(TOOLS, "none", _user("weather in Paris")) is None


def test_directive_words_do_not_steer_the_tool_choice() -> None:
    text = 'Good morning [[fake: {"tool_format": "native", "error": null}]]'
    assert choose_tool_call([SEARCH_TOOL], "auto", _user(text)) is None


@pytest.mark.parametrize("arguments", [{"city": "Paris", "unit": "c"}, {}, {"n": 1}, {"nested": {"a": [1, 2]}}])
def test_malformed_arguments_are_never_valid_json(arguments: dict[str, Any]) -> None:
    variants = {malformed(arguments, seed) for seed in range(3)}
    for text in variants:
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(text)
    if any(isinstance(v, str) for v in arguments.values()):
        assert len(variants) == 3, "truncated, single-quoted and trailing-comma variants"


def test_schema_invalid_arguments_are_json_that_fails_the_schema() -> None:
    schema = WEATHER_TOOL["function"]["parameters"]
    valid = example_from_schema(schema)
    for seed in range(5):
        broken = schema_invalid(valid, schema, seed)
        orjson.loads(orjson.dumps(broken))
        with pytest.raises(jsonschema.ValidationError):
            _validate(broken, schema)


def test_schema_invalid_refuses_schemas_that_accept_everything() -> None:
    with pytest.raises(SchemaError):
        schema_invalid({}, {}, 0)
