"""Fuzz the tool-call path: compiling a request's schemas, repairing syntax, recognising
calls written as text and checking answers. Whatever the model or client sends, the
result is a verdict (never an exception), and whatever is delivered as valid or repaired
really validates against the declared schema."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from gateway.errors import GatewayError
from gateway.toolcalls import Action, Contract, SchemaCache, ToolGuard, prepare
from gateway.toolcalls.repair import Repair, repair_json
from tests.hostile.strategies import JSON, SCHEMAS, fuzz
from tests.toolcalls.helpers import TIME_SCHEMA, WEATHER_SCHEMA, call, completion, tool

TOOLS = {"get_weather": WEATHER_SCHEMA, "get_time": TIME_SCHEMA}
CONTRACT = prepare({"tools": [tool(name, schema) for name, schema in TOOLS.items()]})
GOOD_ARGUMENTS = ['{"city": "Paris", "unit": "c"}', '{"tz": "UTC"}', '{"city": "Oslo"}']
GOOD_TEXTS = st.sampled_from(GOOD_ARGUMENTS)
JUNK = st.sampled_from(["'", '"', ",", "}", "{", "]", "[", ":", "True", "None", "\\", "```", "\n", "\x00", "\ud800"])


@st.composite
def damaged(draw: st.DrawFn, texts: st.SearchStrategy[str] = GOOD_TEXTS) -> str:
    """Valid JSON text with a few characters cut, inserted or swapped."""
    text = draw(texts)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["cut", "insert", "truncate"]))
        if kind == "cut":
            text = text[:at] + text[at + 1 :]
        elif kind == "insert":
            text = text[:at] + draw(JUNK) + text[at:]
        else:
            text = text[:at]
    return text


ARGUMENTS = damaged() | st.text(max_size=60) | JSON.map(lambda v: orjson.dumps(v).decode())
CONTENT = (
    st.none()
    | st.text(max_size=80)
    | damaged(st.sampled_from(['[get_weather(city="Paris")]', '{"name": "get_time", "parameters": {"tz": "UTC"}}']))
    | damaged(st.sampled_from(['<function=get_weather>{"city": "Rome"}</function>']))
)


def assert_delivered_calls_validate(contract: Contract, body: dict[str, Any]) -> None:
    message = body["choices"][0]["message"]
    for delivered in message.get("tool_calls") or ():
        name = delivered["function"]["name"]
        assert name in contract.tools, name
        arguments = orjson.loads(delivered["function"]["arguments"])
        assert isinstance(arguments, dict)
        assert Draft202012Validator(contract.tools[name].schema).is_valid(arguments), (name, arguments)


def check(contract: Contract, answer: dict[str, Any], mode: str) -> None:
    guard = ToolGuard(contract, mode=mode, reasks=1, new_id=lambda: "call_fuzz")
    decision = guard.check(answer)
    assert decision.action in set(Action)
    if decision.action is Action.DELIVER and guard.verdict in {"valid", "repaired"}:
        assert_delivered_calls_validate(contract, decision.body)
    if decision.action is Action.FAIL:
        assert guard.failure().status == 502


@fuzz(300)
@given(st.text(max_size=120) | damaged(), st.sampled_from(["{", "[", "{["]))
def test_repair_returns_a_verdict(text: str, openers: str) -> None:
    result = repair_json(text, openers)
    assert isinstance(result, Repair) and (result.ok or result.reason)


@fuzz(300)
@given(
    st.lists(st.tuples(st.sampled_from([*TOOLS, "rm_rf", ""]), ARGUMENTS), max_size=3),
    st.sampled_from(["retry", "repair", "report"]),
)
def test_tool_calls_from_the_model(calls: list[tuple[str, str]], mode: str) -> None:
    assert CONTRACT is not None
    made = [call(name, arguments, f"call_{i}") for i, (name, arguments) in enumerate(calls)]
    check(CONTRACT, completion(tool_calls=made or None), mode)


@fuzz(200)
@given(CONTENT, st.sampled_from(["stop", "tool_calls", "length"]))
def test_calls_written_as_text(content: str | None, finish: str) -> None:
    assert CONTRACT is not None
    check(CONTRACT, completion(content=content, finish=finish), "retry")


@fuzz(200)
@given(st.lists(SCHEMAS, min_size=1, max_size=2), JSON, st.data())
def test_client_schemas(schemas: list[Any], arguments: Any, data: st.DataObject) -> None:
    """Any schema a client sends is compiled or refused with a 400; an answer checked
    against whatever compiled still gets a verdict."""
    body = {"tools": [tool(f"f{i}", schema) for i, schema in enumerate(schemas)]}
    try:
        contract = prepare(body, SchemaCache(8))
    except GatewayError as err:
        assert err.status == 400 and err.code in {"invalid_tool_schema", "invalid_value"}
        return
    assert contract is not None
    text = data.draw(st.just(orjson.dumps(arguments).decode()) | damaged(st.just(orjson.dumps(arguments).decode())))
    check(contract, completion(tool_calls=[call("f0", text)]), "retry")
