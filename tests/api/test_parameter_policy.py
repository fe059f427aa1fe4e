"""The parameter policy (gateway/schema/params.py) through the running gateway: what
OpenAI clients send by default is served on every backend, and each fake receives only
what its provider takes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from gateway.fakes.script import Behaviour
from gateway.schema.params import IGNORED_HEADER, PARAMETERS
from tests.api.conftest import SimulatedGateway

BACKENDS = ["deepinfra", "together", "fireworks", "bedrock", "vllm"]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
ASK = [{"role": "user", "content": "What is the weather in Paris? Use get_weather."}]


def client(gateway: SimulatedGateway) -> OpenAI:
    return OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0, timeout=20)


def only(provider: str) -> dict[str, Any]:
    return {"corral": {"providers": {"only": [provider]}}}


def chat_sent(gateway: SimulatedGateway, provider: str) -> list[dict[str, Any]]:
    return [r.json for r in gateway.requests(provider) if isinstance(r.json, dict) and r.method == "POST"]


def test_every_openai_parameter_has_a_row() -> None:
    """openai-python's own request type is the list of fields; a new one fails here until it has a policy."""
    from openai.types.chat.completion_create_params import CompletionCreateParamsBase

    assert set(CompletionCreateParamsBase.__annotations__) <= set(PARAMETERS)


@pytest.mark.parametrize("provider", BACKENDS)
def test_client_defaults_are_served_and_ignored_fields_never_sent(gateway: SimulatedGateway, provider: str) -> None:
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="llama-4-maverick",
        messages=[{"role": "user", "content": "Hello there"}],
        max_tokens=32,
        reasoning_effort="low",
        modalities=["text"],
        prompt_cache_key="tenant-7",
        verbosity="low",
        safety_identifier="user-hash-1",
        extra_body=only(provider),
    )
    assert raw.http_response.status_code == 200
    assert raw.headers["x-corral-provider"] == provider
    assert raw.headers[IGNORED_HEADER] == "reasoning_effort, verbosity"
    assert raw.parse().choices[0].message.content
    sent = json.dumps(chat_sent(gateway, provider))
    assert "Hello there" in sent
    for field in ("reasoning_effort", "modalities", "prompt_cache_key", "verbosity", "safety_identifier"):
        assert field not in sent


@pytest.mark.parametrize("provider", ["deepinfra", "together", "fireworks"])
def test_parallel_tool_calls_false_is_served_and_not_sent(gateway: SimulatedGateway, provider: str) -> None:
    """These dialects lack the flag: the fake receives no `parallel_tool_calls`, and a
    model that makes two calls anyway is re-asked by the gateway's validator."""
    gateway.fake(provider).script.push(Behaviour(tool_calls=2))
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="llama-4-maverick",
        messages=ASK,
        tools=[WEATHER],
        tool_choice="required",
        parallel_tool_calls=False,
        extra_body=only(provider),
    )
    completion = raw.parse()
    calls = completion.choices[0].message.tool_calls
    assert calls is not None and len(calls) == 1
    assert raw.headers["x-corral-tool-validation"] == "retried:1"
    sent = chat_sent(gateway, provider)
    assert len(sent) == 2 and all("parallel_tool_calls" not in body for body in sent)


def test_parallel_tool_calls_false_leaves_every_tool_deployment_eligible(gateway: SimulatedGateway) -> None:
    body = {"model": "llama-4-maverick", "messages": ASK, "tools": [WEATHER]}
    with httpx.Client(base_url=gateway.url, timeout=20) as http:
        plain = http.post("/v1/route/explain", json=body).json()
        flagged = http.post("/v1/route/explain", json={**body, "parallel_tool_calls": False}).json()
    kept = [c["provider"] for c in plain["plan"]]
    assert [c["provider"] for c in flagged["plan"]] == kept
    assert {"deepinfra", "fireworks", "bedrock", "vllm"} <= set(kept)


def test_a_model_that_calls_twice_is_delivered_as_is_when_parallel_calls_are_allowed(
    gateway: SimulatedGateway,
) -> None:
    gateway.fake("deepinfra").script.push(Behaviour(tool_calls=2))
    completion = client(gateway).chat.completions.create(
        model="llama-4-maverick", messages=ASK, tools=[WEATHER], extra_body=only("deepinfra")
    )
    calls = completion.choices[0].message.tool_calls
    assert calls is not None and len(calls) == 2


@pytest.mark.parametrize("provider", ["deepinfra", "bedrock", "vllm"])
def test_logit_bias_goes_where_it_is_taken_and_is_named_where_not(gateway: SimulatedGateway, provider: str) -> None:
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="llama-4-maverick",
        messages=[{"role": "user", "content": "Hello"}],
        logit_bias={"1234": -100},
        extra_body=only(provider),
    )
    assert raw.http_response.status_code == 200
    if provider == "vllm":
        assert IGNORED_HEADER not in raw.headers
        assert chat_sent(gateway, "vllm")[-1]["logit_bias"] == {"1234": -100}
    else:
        assert raw.headers[IGNORED_HEADER] == "logit_bias"
        assert all("logit_bias" not in body for body in chat_sent(gateway, provider))


def test_legacy_functions_become_tools_and_the_answer_has_function_call(gateway: SimulatedGateway) -> None:
    completion = client(gateway).chat.completions.create(
        model="llama-4-maverick",
        messages=ASK,
        functions=[WEATHER["function"]],
        function_call={"name": "get_weather"},
        extra_body=only("deepinfra"),
    )
    message = completion.choices[0].message
    assert message.function_call is not None and message.function_call.name == "get_weather"
    assert completion.choices[0].finish_reason == "function_call"
    (sent,) = chat_sent(gateway, "deepinfra")
    assert sent["tools"] == [WEATHER] and "functions" not in sent and "function_call" not in sent
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


def test_legacy_function_role_messages_become_tool_messages(gateway: SimulatedGateway) -> None:
    messages: list[Any] = [
        *ASK,
        {
            "role": "assistant",
            "content": None,
            "function_call": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        },
        {"role": "function", "name": "get_weather", "content": "18C and sunny"},
    ]
    client(gateway).chat.completions.create(
        model="llama-4-maverick",
        messages=messages,
        functions=[WEATHER["function"]],
        function_call="none",
        extra_body=only("deepinfra"),
    )
    (sent,) = chat_sent(gateway, "deepinfra")
    call_id = sent["messages"][1]["tool_calls"][0]["id"]
    assert sent["messages"][2] == {"role": "tool", "tool_call_id": call_id, "content": "18C and sunny"}


def test_audio_output_is_a_clear_400(gateway: SimulatedGateway) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client(gateway).chat.completions.create(
            model="llama-4-maverick", messages=[{"role": "user", "content": "hi"}], modalities=["text", "audio"]
        )
    assert caught.value.code == "unsupported_parameter" and caught.value.param == "modalities"
    assert not any(gateway.requests(p) for p in BACKENDS)


def test_readme_table_is_the_policy() -> None:
    """README's parameter table lists every row with its handling (a promise in a doc is a test)."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for name, param in PARAMETERS.items():
        assert f"| `{name}` | {param.handling.value} |" in readme, name


def test_parallel_tool_calls_false_holds_in_a_stream_too(gateway: SimulatedGateway) -> None:
    gateway.fake("deepinfra").script.push(Behaviour(tool_calls=2))
    stream = client(gateway).chat.completions.create(
        model="llama-4-maverick",
        messages=ASK,
        tools=[WEATHER],
        tool_choice="required",
        parallel_tool_calls=False,
        stream=True,
        extra_body=only("deepinfra"),
    )
    indexes = {call.index for chunk in stream for choice in chunk.choices for call in choice.delta.tool_calls or ()}
    assert indexes == {0}
    sent = chat_sent(gateway, "deepinfra")
    assert len(sent) == 2 and all("parallel_tool_calls" not in body for body in sent)


def test_legacy_functions_stream_function_call_deltas(gateway: SimulatedGateway) -> None:
    stream = client(gateway).chat.completions.create(
        model="llama-4-maverick",
        messages=ASK,
        functions=[WEATHER["function"]],
        function_call={"name": "get_weather"},
        stream=True,
        extra_body=only("deepinfra"),
    )
    name, arguments, finish = "", "", None
    for chunk in stream:
        for choice in chunk.choices:
            call = choice.delta.function_call
            if call is not None:
                name += call.name or ""
                arguments += call.arguments or ""
            finish = choice.finish_reason or finish
    assert name == "get_weather" and json.loads(arguments)["city"]
    assert finish == "function_call"
