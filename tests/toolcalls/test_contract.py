"""prepare(): schemas compiled once and cached; a broken schema is a 400 before any backend."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft7Validator, Draft202012Validator

from gateway.errors import GatewayError
from gateway.toolcalls import SchemaCache, prepare
from tests.toolcalls.helpers import TIME, WEATHER, WEATHER_SCHEMA, request, tool


def test_no_tools_and_no_response_format_is_not_applicable() -> None:
    assert prepare({"messages": []}) is None
    assert prepare({"messages": [], "response_format": {"type": "text"}}) is None


def test_tools_are_compiled_with_choice_and_parallel() -> None:
    contract = prepare(
        request(tool_choice={"type": "function", "function": {"name": "get_time"}}, parallel_tool_calls=False)
    )
    assert contract is not None
    assert set(contract.tools) == {"get_weather", "get_time"}
    assert contract.choice.kind == "function" and contract.choice.name == "get_time"
    assert contract.allowed_names() == ("get_time",)
    assert contract.parallel is False


def test_same_schema_in_any_key_order_is_compiled_once() -> None:
    cache = SchemaCache(8)
    reordered = dict(reversed(list(WEATHER_SCHEMA.items())))
    first = cache.get(WEATHER_SCHEMA)
    assert cache.get(reordered) is first
    assert len(cache) == 1


def test_cache_is_bounded_and_least_recently_used_goes_first() -> None:
    cache = SchemaCache(2)
    a, b, c = ({"type": "object", "title": name} for name in "abc")
    cached_a = cache.get(a)
    cache.get(b)
    cache.get(a)
    cache.get(c)
    assert len(cache) == 2
    assert cache.get(a) is cached_a
    assert cache.get(b) is not None and len(cache) == 2


def test_cached_validator_is_unaffected_by_later_changes_to_the_request() -> None:
    cache = SchemaCache(4)
    schema: dict[str, Any] = {"type": "object", "required": ["city"]}
    compiled = cache.get(schema)
    schema["required"].append("unit")
    assert compiled.is_valid({"city": "Paris"})


def test_declared_draft_is_used() -> None:
    cache = SchemaCache(4)
    draft7 = cache.get({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"})
    # The drafts' classes extended with RE2 regex keywords: same meta-schema, same draft.
    assert draft7.validator.META_SCHEMA == Draft7Validator.META_SCHEMA
    assert cache.get({"type": "object"}).validator.META_SCHEMA == Draft202012Validator.META_SCHEMA


@pytest.mark.parametrize(
    ("fmt", "good", "bad"),
    [
        ("date", "2026-05-01", "01/05/2026"),
        ("email", "a@example.com", "nobody"),
        ("date-time", "2026-05-01T10:00:00Z", "tomorrow"),
    ],
)
def test_formats_are_checked(fmt: str, good: str, bad: str) -> None:
    compiled = SchemaCache(4).get({"type": "object", "properties": {"x": {"type": "string", "format": fmt}}})
    assert compiled.is_valid({"x": good})
    assert not compiled.is_valid({"x": bad})
    assert compiled.errors({"x": bad})[0].startswith("$.x: ")


def test_invalid_tool_schema_is_a_400_naming_the_tool_and_the_reason() -> None:
    broken = tool("book", {"type": "object", "properties": {"when": {"type": "datetime"}}})
    with pytest.raises(GatewayError) as caught:
        prepare(request(tools=[WEATHER, TIME, broken]))
    error = caught.value
    assert error.status == 400
    assert error.code == "invalid_tool_schema"
    assert error.param == "tools[2].function.parameters"
    assert "book" in error.message and "datetime" in error.message and "$.properties.when.type" in error.message


def test_invalid_schema_in_declared_draft() -> None:
    draft7 = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "required": "city"}
    with pytest.raises(GatewayError) as caught:
        prepare(request(tools=[tool("f", draft7)]))
    assert caught.value.code == "invalid_tool_schema"
    assert caught.value.param == "tools[0].function.parameters"


def test_missing_parameters_means_any_object() -> None:
    contract = prepare(request(tools=[tool("ping", None)]))
    assert contract is not None
    assert contract.tools["ping"].is_valid({})
    assert not contract.tools["ping"].is_valid([])


def test_duplicate_function_and_undeclared_tool_choice_are_400s() -> None:
    with pytest.raises(GatewayError) as caught:
        prepare(request(tools=[WEATHER, WEATHER]))
    assert caught.value.param == "tools[1].function.name"
    with pytest.raises(GatewayError) as caught:
        prepare(request(tool_choice={"type": "function", "function": {"name": "nope"}}))
    assert caught.value.param == "tool_choice"


def test_response_format_schemas() -> None:
    contract = prepare({"messages": [], "response_format": {"type": "json_object"}})
    assert contract is not None and contract.output_kind == "json_object" and contract.output is None
    spec = {"name": "answer", "schema": {"type": "object", "required": ["answer"]}}
    contract = prepare({"messages": [], "response_format": {"type": "json_schema", "json_schema": spec}})
    assert contract is not None and contract.output_kind == "json_schema" and contract.output is not None
    bad = {"name": "answer", "schema": {"type": "objekt"}}
    with pytest.raises(GatewayError) as caught:
        prepare({"messages": [], "response_format": {"type": "json_schema", "json_schema": bad}})
    assert caught.value.status == 400 and caught.value.param == "response_format.json_schema.schema"
