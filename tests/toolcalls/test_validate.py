"""One reply against the contract: names, arguments, schema, tool_choice, parallel calls, response_format."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.toolcalls import Action, Attempt, ToolGuard, check_message, prepare
from tests.toolcalls.helpers import call, completion, request

NAMED_TIME = {"type": "function", "function": {"name": "get_time"}}


def check(body: dict[str, Any], message: dict[str, Any], *, repair: bool = True, finish: str = "stop") -> Attempt:
    contract = prepare(body)
    assert contract is not None
    return check_message(contract, message, finish, repair=repair, new_id=lambda: "call_new")


def calls_message(*calls: dict[str, Any], content: str | None = None) -> dict[str, Any]:
    return {"role": "assistant", "content": content, "tool_calls": list(calls)}


def test_valid_call_is_untouched() -> None:
    message = calls_message(call("get_weather", '{"city":  "Paris" }'))
    attempt = check(request(), message)
    assert attempt.valid and not attempt.changed
    assert attempt.message is attempt.original
    assert attempt.calls[0].arguments == '{"city":  "Paris" }'


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ('{"city": 7}', "$.city: 7 is not of type 'string'"),
        ('{"unit": "c"}', "$: 'city' is a required property"),
        ('{"city": "Paris", "unit": "k"}', "$.unit: 'k' is not one of ['c', 'f']"),
        ('{"city": "Paris", "when": "now"}', "Additional properties are not allowed ('when' was unexpected)"),
        ('["Paris"]', "arguments must be a JSON object, not an array"),
        ('"Paris"', "arguments must be a JSON object, not a string"),
    ],
)
def test_schema_errors_are_reported_with_paths(arguments: str, error: str) -> None:
    attempt = check(request(), calls_message(call("get_weather", arguments)))
    assert not attempt.valid
    assert any(error in e and e.startswith("tool_calls[0] (get_weather): ") for e in attempt.errors), attempt.errors


def test_unknown_function() -> None:
    attempt = check(request(), calls_message(call("get_wether", '{"city": "Paris"}')))
    assert attempt.errors == (
        "tool_calls[0] (get_wether): unknown function 'get_wether'; declared: get_weather, get_time",
    )
    assert not attempt.calls[0].declared


def test_tool_choice_required_needs_a_call() -> None:
    attempt = check(request(tool_choice="required"), {"role": "assistant", "content": "It is sunny."})
    assert attempt.errors == ("tool_choice is 'required' but the reply calls no tool",)


def test_tool_choice_named_allows_only_that_function() -> None:
    body = request(tool_choice=NAMED_TIME)
    attempt = check(body, calls_message(call("get_weather", '{"city": "Paris"}')))
    assert "tool_choice forces 'get_time'; 'get_weather' may not be called" in attempt.errors[0]
    assert check(body, calls_message(call("get_time", '{"tz": "CET"}'))).valid
    assert not check(body, {"role": "assistant", "content": "hello"}).valid


def test_tool_choice_none_forbids_calls_and_leaves_call_like_text_alone() -> None:
    body = request(tool_choice="none")
    attempt = check(body, calls_message(call("get_time", '{"tz": "CET"}')))
    assert "tool_choice is 'none'" in attempt.errors[0]
    text = {"role": "assistant", "content": '[get_time(tz="CET")]'}
    attempt = check(body, text)
    assert attempt.valid and attempt.message["content"] == '[get_time(tz="CET")]'


def test_parallel_false_allows_one_call() -> None:
    body = request(parallel_tool_calls=False)
    two = calls_message(call("get_weather", '{"city": "Paris"}'), call("get_time", '{"tz": "CET"}', "call_2"))
    assert check(body, two).errors == ("parallel_tool_calls is false but the reply makes 2 tool calls",)
    assert check(request(), two).valid


def test_text_calls_become_tool_calls_with_generated_ids() -> None:
    attempt = check(request(), {"role": "assistant", "content": '[get_weather(city="Paris")]'})
    assert attempt.valid and attempt.changed
    assert attempt.message["content"] is None
    assert attempt.message["tool_calls"] == [call("get_weather", '{"city":"Paris"}', "call_new")]
    assert attempt.finish_reason == "tool_calls"


def test_report_mode_flags_text_calls_without_changing_anything() -> None:
    message = {"role": "assistant", "content": '[get_weather(city="Paris")]'}
    attempt = check(request(), message, repair=False)
    assert not attempt.valid and attempt.message is attempt.original
    assert "written as text (pythonic)" in attempt.errors[0]


def test_repaired_call_is_kept_only_if_it_validates() -> None:
    fixed = check(request(), calls_message(call("get_weather", "{'city': 'Paris',}")))
    assert fixed.valid and fixed.calls[0].arguments == '{"city":"Paris"}'
    still_bad = completion(tool_calls=[call("get_weather", "{'city': 'Paris', 'unit': 'k'}")])
    guard = ToolGuard(prepare(request()), "repair")
    decision = guard.check(still_bad)
    assert decision.action is Action.FAIL and decision.body == still_bad
    assert decision.attempt is not None and "'k' is not one of" in decision.attempt.errors[0]


def test_double_encoded_arguments_are_decoded_once() -> None:
    encoded = orjson.dumps('{"city": "Paris"}').decode()
    attempt = check(request(), calls_message(call("get_weather", encoded)))
    assert attempt.valid and attempt.calls[0].arguments == '{"city":"Paris"}'


def test_empty_arguments_for_a_function_without_required_fields() -> None:
    body = request(tools=[{"type": "function", "function": {"name": "ping"}}])
    attempt = check(body, calls_message(call("ping", "")))
    assert attempt.valid and attempt.calls[0].arguments == "{}"


SCHEMA_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "a",
        "schema": {
            "type": "object",
            "properties": {"answer": {"type": "integer"}},
            "required": ["answer"],
            "additionalProperties": False,
        },
    },
}


@pytest.mark.parametrize(
    ("content", "valid", "delivered"),
    [
        ('{"answer": 42}', True, '{"answer": 42}'),
        ('```json\n{"answer": 42,}\n```', True, '{"answer":42}'),
        ('{"answer": "42"}', False, '{"answer": "42"}'),
        ('{"answer": 42, "why": "because"}', False, '{"answer": 42, "why": "because"}'),
        ("forty-two", False, "forty-two"),
    ],
)
def test_response_format_json_schema(content: str, valid: bool, delivered: str) -> None:
    body = {"messages": [], "response_format": SCHEMA_FORMAT}
    attempt = check(body, {"role": "assistant", "content": content})
    assert attempt.valid is valid, attempt.errors
    assert attempt.message["content"] == delivered


def test_response_format_json_object() -> None:
    body = {"messages": [], "response_format": {"type": "json_object"}}
    assert check(body, {"role": "assistant", "content": '{"a": 1}'}).valid
    assert not check(body, {"role": "assistant", "content": "[1, 2]"}).valid
    assert not check(body, {"role": "assistant", "content": None}).valid


@pytest.mark.parametrize(
    "arguments",
    [
        '{"city": "Paris", "x": ' + "[" * 900 + "]" * 900 + "}",
        "{'city': 'Paris', 'x': " + "[" * 900 + "]" * 900 + ",}",
        "{'city': 'Paris', 'x': " + "[" * 5000,
    ],
)
def test_deeply_nested_arguments_do_not_crash(arguments: str) -> None:
    body = request(tools=[{"type": "function", "function": {"name": "f"}}])
    attempt = check(body, calls_message(call("f", arguments)))
    assert attempt.calls[0].name == "f"


def test_deeply_nested_pythonic_text_does_not_crash() -> None:
    attempt = check(request(), {"role": "assistant", "content": "[get_weather(city=" + "[" * 5000 + ")]"})
    assert not attempt.valid
