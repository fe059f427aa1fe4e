"""POST /v1/responses with the official openai client (`responses.create`, `responses.stream`)
against the running gateway on its fakes: what the client sees, and what each fake received."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import openai
import pytest
from openai import OpenAI

from gateway.fakes.script import Behaviour
from tests.api.conftest import SimulatedGateway

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
}
ASK = "What is the weather in Paris? Use get_weather."
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def client(gateway: SimulatedGateway) -> OpenAI:
    return OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0, timeout=20)


def only(provider: str) -> dict[str, Any]:
    return {"corral": {"providers": {"only": [provider]}}}


def sent(gateway: SimulatedGateway, provider: str) -> list[dict[str, Any]]:
    return [r.json for r in gateway.requests(provider) if isinstance(r.json, dict)]


@pytest.mark.parametrize("provider", ["deepinfra", "bedrock", "vllm"])
def test_text_response_with_instructions_and_usage(gateway: SimulatedGateway, provider: str) -> None:
    raw = client(gateway).responses.with_raw_response.create(
        model="llama-4-maverick",
        instructions="Be brief.",
        input="Hello there",
        max_output_tokens=64,
        extra_body=only(provider),
    )
    response = raw.parse()
    assert response.object == "response" and response.status == "completed"
    assert response.model == "llama-4-maverick"
    assert response.output_text
    assert response.usage is not None and response.usage.output_tokens > 0
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert raw.headers["x-corral-provider"] == provider and Decimal(raw.headers["x-corral-cost-usd"]) > 0
    if provider != "bedrock":
        (body,) = sent(gateway, provider)
        assert body["messages"] == [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello there"},
        ]
        assert body.get("max_tokens", body.get("max_completion_tokens")) == 64


def test_function_call_round_trip_with_previous_response_id(gateway: SimulatedGateway) -> None:
    api = client(gateway)
    first = api.responses.create(
        model="llama-4-maverick", input=ASK, tools=[WEATHER], tool_choice="required", extra_body=only("deepinfra")
    )
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments)["city"]
    (request,) = sent(gateway, "deepinfra")
    assert request["tools"] == [
        {
            "type": "function",
            "function": {k: WEATHER[k] for k in ("name", "description", "parameters")},
        }
    ]
    assert request["tool_choice"] == "required"
    second = api.responses.create(
        model="llama-4-maverick",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "18C and sunny"}],
        tools=[WEATHER],
        extra_body=only("deepinfra"),
    )
    assert second.output_text and second.previous_response_id == first.id
    follow_up = sent(gateway, "deepinfra")[-1]["messages"]
    assert follow_up[0] == {"role": "user", "content": ASK}
    assert follow_up[1]["role"] == "assistant" and follow_up[1]["tool_calls"][0]["id"] == call.call_id
    assert follow_up[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "18C and sunny"}


def test_input_items_become_messages(gateway: SimulatedGateway) -> None:
    client(gateway).responses.create(
        model="llama-4-maverick",
        input=[
            {"role": "developer", "content": "Answer in French."},
            {"role": "user", "content": [{"type": "input_text", "text": "Weather?"}]},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
            {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
        ],
        tools=[WEATHER],
        extra_body=only("vllm"),
    )
    messages = sent(gateway, "vllm")[-1]["messages"]
    assert messages[0] == {"role": "system", "content": "Answer in French."}  # developer, as Llama 4 reads it
    assert messages[1] == {"role": "user", "content": [{"type": "text", "text": "Weather?"}]}
    assert messages[2]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
    ]
    assert messages[3] == {"role": "tool", "tool_call_id": "call_1", "content": "18C"}


def test_text_format_json_schema_is_validated_output(gateway: SimulatedGateway) -> None:
    response = client(gateway).responses.create(
        model="llama-4-maverick",
        input="Invent a person.",
        text={"format": {"type": "json_schema", "name": "person", "schema": PERSON, "strict": True}},
        extra_body=only("vllm"),
    )
    person = json.loads(response.output_text)
    assert isinstance(person["name"], str) and isinstance(person["age"], int)
    fmt = sent(gateway, "vllm")[-1]["response_format"]
    assert fmt == {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}}


def test_stream_text_events_in_order(gateway: SimulatedGateway) -> None:
    with client(gateway).responses.stream(
        model="llama-4-maverick", input="Tell me a story", extra_body=only("deepinfra")
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[2:4] == ["response.output_item.added", "response.content_part.added"]
    assert "response.output_text.delta" in kinds
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert final.output_text and final.usage is not None and final.usage.output_tokens > 0


def test_stream_function_call_events(gateway: SimulatedGateway) -> None:
    with client(gateway).responses.stream(
        model="llama-4-maverick", input=ASK, tools=[WEATHER], tool_choice="required", extra_body=only("vllm")
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [event.type for event in events]
    assert "response.function_call_arguments.delta" in kinds
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert json.loads(done.arguments)["city"]  # type: ignore[union-attr]
    (call,) = [item for item in final.output if item.type == "function_call"]
    assert call.name == "get_weather" and call.arguments == done.arguments  # type: ignore[union-attr]
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))


def test_tool_validation_applies_as_on_chat(gateway: SimulatedGateway) -> None:
    gateway.fake("deepinfra").script.push(Behaviour(tool_args="schema_invalid"))
    raw = client(gateway).responses.with_raw_response.create(
        model="llama-4-maverick", input=ASK, tools=[WEATHER], tool_choice="required", extra_body=only("deepinfra")
    )
    assert raw.headers["x-corral-tool-validation"] == "retried:1"
    (call,) = [item for item in raw.parse().output if item.type == "function_call"]
    assert isinstance(json.loads(call.arguments)["city"], str)  # type: ignore[union-attr]


def test_unknown_previous_response_is_a_404(gateway: SimulatedGateway) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client(gateway).responses.create(model="llama-4-maverick", input="hi", previous_response_id="resp_nope")
    assert caught.value.code == "not_found" and caught.value.param == "previous_response_id"


def test_unsupported_tool_types_are_a_clear_400(gateway: SimulatedGateway) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client(gateway).responses.create(model="llama-4-maverick", input="hi", tools=[{"type": "web_search"}])
    assert caught.value.code == "unsupported_parameter" and caught.value.param == "tools[0].type"
    assert not any(gateway.requests(p) for p in ("deepinfra", "vllm", "bedrock", "fireworks"))


def test_store_false_keeps_nothing(gateway: SimulatedGateway) -> None:
    api = client(gateway)
    first = api.responses.create(model="llama-4-maverick", input="hi", store=False, extra_body=only("deepinfra"))
    assert first.store is False
    with pytest.raises(openai.NotFoundError):
        api.responses.create(model="llama-4-maverick", input="again", previous_response_id=first.id)


def test_the_default_retention_is_the_documented_one(gateway: SimulatedGateway) -> None:
    assert gateway.runtime.responses.retention_s == 86400


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"model": "llama-4-maverick"},
        {"model": "llama-4-maverick", "input": 5},
        {"model": "llama-4-maverick", "input": [5]},
        {"model": "llama-4-maverick", "input": [{"type": ["x"]}]},
        {"model": "llama-4-maverick", "input": [{"role": {"a": 1}, "content": "x"}]},
        {"model": "llama-4-maverick", "input": [{"role": "user", "content": None}]},
        {"model": "llama-4-maverick", "input": [{"role": "user", "content": [{"type": "input_audio"}]}]},
        {"model": "llama-4-maverick", "input": [{"type": "function_call", "name": "f"}]},
        {"model": "llama-4-maverick", "input": [{"type": "function_call_output", "call_id": "c", "output": 3}]},
        {"model": "llama-4-maverick", "input": "hi", "tools": "x"},
        {"model": "llama-4-maverick", "input": "hi", "tools": [3]},
        {"model": "llama-4-maverick", "input": "hi", "tool_choice": ["x"]},
        {"model": "llama-4-maverick", "input": "hi", "text": {"format": {"type": "yaml"}}},
        {"model": "llama-4-maverick", "input": "hi", "instructions": 7},
        {"model": "llama-4-maverick", "input": "hi", "previous_response_id": 7},
        {"model": "llama-4-maverick", "input": "hi", "max_output_tokens": -1},
        {"model": "llama-4-maverick", "input": "hi", "surprise": 1},
        {"model": "gpt-4o", "input": "hi"},
    ],
)
def test_malformed_requests_get_a_4xx_naming_the_problem(gateway: SimulatedGateway, body: dict[str, Any]) -> None:
    import httpx

    answer = httpx.post(gateway.url + "/v1/responses", json=body, timeout=20)
    assert answer.status_code in (400, 404), answer.text
    assert answer.json()["error"]["message"]
