"""run_tools: call → run → send results → repeat, bounded by max_rounds."""

from __future__ import annotations

import json

import httpx
import pydantic
import pytest
from sdk_fakes import HEADERS, FakeGateway, chat_body, tool_call

import corral

MESSAGES = [{"role": "user", "content": "What is 2 + 3, then doubled?"}]


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class Double(pydantic.BaseModel):
    """Double a number."""

    value: int


def _reply(*calls: dict[str, object], content: str | None = None) -> httpx.Response:
    return httpx.Response(200, json=chat_body(content, list(calls) or None), headers=HEADERS)


def test_loop_runs_tools_until_the_model_answers(gateway: FakeGateway) -> None:
    gateway.push(
        _reply(tool_call("add", {"a": 2, "b": 3}, "c1")),
        _reply(tool_call("Double", {"value": 5}, "c2")),
        _reply(content="The answer is 10."),
    )
    doubled: list[Double] = []

    def double(arg: Double) -> dict[str, int]:
        doubled.append(arg)
        return {"result": arg.value * 2}

    result = gateway.client().chat.completions.run_tools(
        model="llama-4-scout",
        messages=MESSAGES,
        tools=[add, corral.tool(Double, handler=double)],
        tags={"team": "math"},
    )
    assert result.content == "The answer is 10."
    assert result.rounds == 2 and len(result.completions) == 3
    assert doubled == [Double(value=5)]
    roles = [m["role"] for m in result.messages]
    assert roles == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    assert result.messages[2] == {"role": "tool", "tool_call_id": "c1", "content": "5"}
    assert result.messages[4] == {"role": "tool", "tool_call_id": "c2", "content": '{"result": 10}'}
    last_sent = gateway.sent_json()
    assert last_sent["messages"] == result.messages[:-1]
    assert last_sent["corral"] == {"tags": {"team": "math"}}
    assert [t["function"]["name"] for t in last_sent["tools"]] == ["add", "Double"]
    assert MESSAGES == [{"role": "user", "content": "What is 2 + 3, then doubled?"}]  # not mutated


def test_loop_is_bounded(gateway: FakeGateway) -> None:
    gateway.tool_args = {"add": {"a": 1, "b": 1}}  # the fake model asks for a tool every time
    calls: list[int] = []

    def counting_add(a: int, b: int) -> int:
        calls.append(a + b)
        return a + b

    gateway.push(*[_reply(tool_call("counting_add", {"a": 1, "b": 1})) for _ in range(10)])
    with pytest.raises(corral.MaxToolRoundsExceeded) as info:
        gateway.client().chat.completions.run_tools(
            model="m", messages=MESSAGES, tools=[counting_add], max_rounds=3
        )
    assert len(calls) == 3
    assert len(gateway.requests) == 4
    assert info.value.result.rounds == 3
    assert info.value.result.messages[-1]["tool_calls"]


def test_errors_go_back_to_the_model(gateway: FakeGateway) -> None:
    def explode(x: int) -> int:
        raise RuntimeError("disk on fire")

    gateway.push(
        _reply(
            tool_call("explode", {"x": 1}, "a"),
            tool_call("explode", {"x": "one"}, "b"),
            tool_call("missing", {}, "c"),
        ),
        _reply(content="Sorry."),
    )
    result = gateway.client().chat.completions.run_tools(model="m", messages=MESSAGES, tools=[explode])
    tool_messages = {m["tool_call_id"]: m["content"] for m in result.messages if m["role"] == "tool"}
    assert tool_messages["a"] == "Error: RuntimeError: disk on fire"
    assert tool_messages["b"].startswith("Error: invalid arguments: x: 'one' is not of type 'integer'")
    assert tool_messages["b"].endswith("Fix the errors and try again.")
    assert tool_messages["c"] == "Error: there is no tool named 'missing'."


def test_tools_need_handlers_and_rounds_are_checked(gateway: FakeGateway) -> None:
    client = gateway.client()
    with pytest.raises(ValueError, match="handler"):
        client.chat.completions.run_tools(model="m", messages=MESSAGES, tools=[Double])
    with pytest.raises(ValueError, match="max_rounds"):
        client.chat.completions.run_tools(model="m", messages=MESSAGES, tools=[add], max_rounds=-1)
    assert gateway.requests == []


def test_async_handlers_need_the_async_client(gateway: FakeGateway) -> None:
    async def slow_add(a: int, b: int) -> int:
        return a + b

    gateway.push(_reply(tool_call("slow_add", {"a": 1, "b": 2})))
    with pytest.raises(TypeError, match="AsyncCorral"):
        gateway.client().chat.completions.run_tools(model="m", messages=MESSAGES, tools=[slow_add])


async def test_async_loop_awaits_handlers(gateway: FakeGateway) -> None:
    async def slow_add(a: int, b: int) -> int:
        return a + b

    gateway.push(
        _reply(tool_call("slow_add", {"a": 1, "b": 2}, "x"), tool_call("add", {"a": 3, "b": 4}, "y")),
        _reply(content="3 and 7"),
    )
    async with gateway.async_client() as client:
        result = await client.chat.completions.run_tools(model="m", messages=MESSAGES, tools=[slow_add, add])
    assert result.content == "3 and 7"
    assert [json.loads(m["content"]) for m in result.messages if m["role"] == "tool"] == [3, 7]


async def test_async_loop_is_bounded(gateway: FakeGateway) -> None:
    gateway.push(*[_reply(tool_call("add", {"a": 1, "b": 1})) for _ in range(5)])
    async with gateway.async_client() as client:
        with pytest.raises(corral.MaxToolRoundsExceeded):
            await client.chat.completions.run_tools(model="m", messages=MESSAGES, tools=[add], max_rounds=1)
    assert len(gateway.requests) == 2
