"""Re-ask conversations and the vLLM structured-output constraint."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.toolcalls import Action, ToolGuard, prepare, structured_constraint
from gateway.toolcalls.reask import CLOSING, envelope
from gateway.toolcalls.schemas import SchemaCache
from tests.toolcalls.helpers import call, completion, request

MESSAGES = request()["messages"]


def reask(answer: dict[str, Any], **body: Any) -> list[dict[str, Any]]:
    guard = ToolGuard(prepare(request(**body)), new_id=lambda: "call_new")
    decision = guard.check(answer)
    assert decision.action is Action.REASK and decision.attempt is not None
    return guard.reask_messages(MESSAGES, decision.attempt)


def test_errors_go_to_each_tool_call_id_and_the_last_message_closes() -> None:
    answer = completion(
        tool_calls=[call("get_weather", '{"city": "Paris", "unit": "k"}'), call("get_time", '{"tz": "CET"}', "call_2")]
    )
    messages = reask(answer)
    assert messages[: len(MESSAGES)] == MESSAGES
    assistant, first, second = messages[len(MESSAGES) :]
    assert assistant["role"] == "assistant" and [c["id"] for c in assistant["tool_calls"]] == ["call_1", "call_2"]
    assert first == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": "Error: the call was rejected:\n- $.unit: 'k' is not one of ['c', 'f']",
    }
    assert second["tool_call_id"] == "call_2"
    assert second["content"].startswith("Not executed")
    assert second["content"].endswith("Call the tool again with corrected arguments.\n" + CLOSING)


def test_unparseable_and_undeclared_calls_are_quoted_and_a_user_turn_closes() -> None:
    answer = completion(tool_calls=[call("get_weather", '{"city": "Par'), call("search", '{"q": "x"}', "call_2")])
    messages = reask(answer)
    assistant, user = messages[len(MESSAGES) :]
    assert "tool_calls" not in assistant
    assert assistant["content"] == 'get_weather({"city": "Par)\nsearch({"q": "x"})'
    assert user["role"] == "user"
    assert "- tool_calls[0] (get_weather): arguments are not valid JSON" in user["content"]
    assert "unknown function 'search'" in user["content"]
    assert user["content"].endswith(CLOSING)


def test_missing_required_call_keeps_the_text_and_asks_for_a_call() -> None:
    messages = reask(completion(content="It is probably sunny."), tool_choice="required")
    assistant, user = messages[len(MESSAGES) :]
    assert assistant == {"role": "assistant", "content": "It is probably sunny."}
    assert "tool_choice is 'required'" in user["content"]
    assert "Call the tool now" in user["content"] and user["content"].endswith(CLOSING)


def test_response_format_reask() -> None:
    spec = {"name": "a", "schema": {"type": "object", "required": ["answer"]}}
    body = {"messages": MESSAGES, "response_format": {"type": "json_schema", "json_schema": spec}}
    guard = ToolGuard(prepare(body))
    decision = guard.check(completion(content='{"reply": 1}'))
    assert decision.attempt is not None
    user = guard.reask_messages(MESSAGES, decision.attempt)[-1]
    assert "content: $: 'answer' is a required property" in user["content"]
    assert "Reply again with only the JSON value" in user["content"]
    assert guard.constraint(decision.attempt) is None  # vLLM enforces response_format itself


def test_constraint_for_one_failed_function_is_a_response_format_envelope() -> None:
    contract = prepare(request())
    assert contract is not None
    guard = ToolGuard(contract)
    decision = guard.check(completion(tool_calls=[call("get_weather", '{"city": 1}')]))
    constraint = guard.constraint(decision.attempt)
    assert constraint is not None and constraint["tool_choice"] == "auto"
    spec = constraint["response_format"]["json_schema"]
    assert spec["name"] == "get_weather"
    shape = SchemaCache(2).get(spec["schema"])
    assert shape.is_valid({"name": "get_weather", "parameters": {"city": "Paris"}})
    assert not shape.is_valid({"name": "get_weather", "parameters": {"city": 1}})
    assert not shape.is_valid({"name": "get_time", "parameters": {"city": "Paris"}})


def test_constraint_for_required_over_several_tools() -> None:
    contract = prepare(request(tool_choice="required"))
    assert contract is not None
    constraint = structured_constraint(contract)
    assert constraint is not None
    shape = SchemaCache(2).get(constraint["structured_outputs"]["json"])
    assert shape.is_valid([{"name": "get_time", "parameters": {"tz": "CET"}}])
    assert not shape.is_valid([])
    assert structured_constraint(prepare(request())) is None  # type: ignore[arg-type]


def test_envelope_keeps_local_references_resolvable() -> None:
    params = {"type": "object", "properties": {"at": {"$ref": "#/$defs/when"}}, "$defs": {"when": {"type": "string"}}}
    shape = envelope("book", params)
    assert shape is not None
    compiled = SchemaCache(2).get(shape)
    assert compiled.is_valid({"name": "book", "parameters": {"at": "noon"}})
    assert not compiled.is_valid({"name": "book", "parameters": {"at": 12}})
    assert envelope("book", {"$ref": "https://example.com/schema.json"}) is None


def test_an_answer_under_the_constraint_is_recognised_as_the_call() -> None:
    guard = ToolGuard(prepare(request(tool_choice="required")), new_id=lambda: "call_new")
    decision = guard.check(completion(content="Let me think."))
    assert decision.action is Action.REASK
    constraint = guard.constraint(decision.attempt)
    assert constraint is not None
    shape = SchemaCache(2).get(constraint["structured_outputs"]["json"])
    constrained = '[{"name": "get_weather", "parameters": {"city": "Paris"}}]'
    assert shape.is_valid(orjson.loads(constrained))
    decision = guard.check(completion(content=constrained))
    assert decision.action is Action.DELIVER and guard.verdict == "retried:1"
    assert decision.body["choices"][0]["message"]["tool_calls"] == [call("get_weather", '{"city":"Paris"}', "call_new")]


def test_constraint_is_a_copy() -> None:
    contract = prepare(request(tool_choice={"type": "function", "function": {"name": "get_time"}}))
    assert contract is not None
    constraint = structured_constraint(contract)
    assert constraint is not None
    constraint["response_format"]["json_schema"]["schema"]["properties"]["parameters"]["required"].append("x")
    assert contract.tools["get_time"].schema["required"] == ["tz"]
