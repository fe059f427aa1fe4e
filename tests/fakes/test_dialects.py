"""What every OpenAI-dialect fake does, each in its own provider's shapes: paths, auth,
models, whole and streamed answers, tool calls in three formats, structured output,
scripted errors and stream faults."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jsonschema
import orjson
import pytest

from gateway.fakes.openai.base import OpenAICompatFake
from gateway.fakes.registry import make_fake
from gateway.fakes.script import Behaviour
from tests.fakes import CHAT_PATHS, SCOUT, WEATHER_TOOL, chat, sse_payloads, stream_text

#: Ollama is left out: it has no keys, no context errors (it truncates) and no 429s.
PROVIDERS = ["groq", "together", "deepinfra", "vllm", "fireworks", "sglang"]
WEATHER_SCHEMA = WEATHER_TOOL["function"]["parameters"]
NATURAL_STOP = {
    "groq": "stop",
    "together": "eos",
    "deepinfra": "stop",
    "vllm": "stop",
    "fireworks": "stop",
    "sglang": "stop",
}


@pytest.fixture(params=PROVIDERS)
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[OpenAICompatFake]:
    options = {"api_key": f"{request.param}-key"} if request.param in ("vllm", "sglang") else {}
    server = make_fake(request.param, **options)
    assert isinstance(server, OpenAICompatFake)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def client(fake: OpenAICompatFake) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {fake.api_key}"}
    async with httpx.AsyncClient(base_url=fake.url, headers=headers, timeout=10) as http:
        yield http


async def post(fake: OpenAICompatFake, client: httpx.AsyncClient, body: Any, **kwargs: Any) -> httpx.Response:
    return await client.post(CHAT_PATHS[fake.provider], json=body, **kwargs)


def error_message(body: Any) -> str:
    if isinstance(body.get("error"), dict):
        return str(body["error"]["message"])
    return str(body.get("message") or body.get("error"))


async def test_base_url_is_the_prefix_an_adapter_appends_chat_completions_to(fake: OpenAICompatFake) -> None:
    prefixes = {
        "groq": "/openai/v1",
        "together": "/v1",
        "deepinfra": "/v1/openai",
        "vllm": "",
        "fireworks": "/inference/v1",
    }
    prefix = prefixes.get(fake.provider, "/v1")
    assert fake.base_url == fake.url + prefix


async def test_whole_answer_shape(fake: OpenAICompatFake, client: httpx.AsyncClient) -> None:
    response = await post(fake, client, chat(fake.provider))
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == SCOUT[fake.provider]
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert len(choice["message"]["content"].split()) == 16
    assert choice["finish_reason"] == NATURAL_STOP[fake.provider]
    usage = body["usage"]
    assert usage["completion_tokens"] == 16
    assert usage["total_tokens"] == usage["prompt_tokens"] + 16


async def test_max_tokens_truncates_with_finish_reason_length(
    fake: OpenAICompatFake, client: httpx.AsyncClient
) -> None:
    body = (await post(fake, client, chat(fake.provider, max_tokens=3))).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 3


async def test_streamed_answer_shape(fake: OpenAICompatFake, client: httpx.AsyncClient) -> None:
    response = await post(fake, client, chat(fake.provider, stream=True))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    chunks = sse_payloads(response.text)
    assert chunks[-1] == "[DONE]"
    data = chunks[:-1]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == data[0]["id"] for c in data)
    assert data[0]["choices"][0]["delta"]["role"] == "assistant"
    assert len(stream_text(data).split()) == 16
    finals = [c for c in data if c["choices"] and c["choices"][0]["finish_reason"]]
    assert len(finals) == 1 and finals[0]["choices"][0]["finish_reason"] == NATURAL_STOP[fake.provider]
    assert sum(1 for c in data if c["choices"] and c["choices"][0]["delta"].get("content")) == 16


async def test_multiple_choices_where_n_is_supported(fake: OpenAICompatFake, client: httpx.AsyncClient) -> None:
    response = await post(fake, client, chat(fake.provider, n=2))
    if fake.provider == "groq":
        assert response.status_code == 400
        return
    body = response.json()
    assert [c["index"] for c in body["choices"]] == [0, 1]
    assert body["usage"]["completion_tokens"] == 32


@pytest.mark.parametrize("header", [None, "Bearer wrong-key"])
async def test_wrong_or_missing_key_is_401(fake: OpenAICompatFake, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    async with httpx.AsyncClient(base_url=fake.url, headers=headers) as http:
        response = await http.post(CHAT_PATHS[fake.provider], json=chat(fake.provider))
    assert response.status_code == 401
    assert error_message(response.json()) not in {"", "None"}


async def test_unknown_model_is_the_providers_not_found(fake: OpenAICompatFake, client: httpx.AsyncClient) -> None:
    response = await post(fake, client, {**chat(fake.provider), "model": "meta-llama/Llama-2-7b"})
    assert response.status_code == 404
    message = error_message(response.json())
    # Fireworks does not repeat the model's name.
    assert "Llama-2-7b" in message if fake.provider != "fireworks" else message.startswith("Model not found")


async def test_only_the_providers_own_model_ids_are_served(fake: OpenAICompatFake, client: httpx.AsyncClient) -> None:
    other = SCOUT["together"] if fake.provider == "groq" else SCOUT["groq"]
    response = await post(fake, client, {**chat(fake.provider), "model": other})
    assert response.status_code == 404


async def test_invalid_json_body_is_400(fake: OpenAICompatFake, client: httpx.AsyncClient) -> None:
    response = await client.post(
        CHAT_PATHS[fake.provider], content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400


async def test_missing_messages_is_400(fake: OpenAICompatFake, client: httpx.AsyncClient) -> None:
    response = await post(fake, client, {"model": SCOUT[fake.provider]})
    assert response.status_code == 400


async def test_context_window_is_enforced(fake: OpenAICompatFake, client: httpx.AsyncClient) -> None:
    window = fake.models[SCOUT[fake.provider]].context_window
    body = chat(fake.provider, "word " * (window * 4 // 5 + 10), max_tokens=100)
    response = await post(fake, client, body)
    expected = 400
    assert response.status_code == expected


def _tool_body(provider: str, **extra: Any) -> dict[str, Any]:
    return chat(provider, "What's the weather in Paris?", tools=[WEATHER_TOOL], **extra)


def _native_call(body: dict[str, Any]) -> dict[str, Any]:
    calls = body["choices"][0]["message"]["tool_calls"]
    assert len(calls) == 1
    call: dict[str, Any] = calls[0]
    return call


async def test_native_tool_call(fake: OpenAICompatFake, client: httpx.AsyncClient) -> None:
    body = (await post(fake, client, _tool_body(fake.provider))).json()
    call = _native_call(body)
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert call["type"] == "function" and call["function"]["name"] == "get_weather"
    prefix = "chatcmpl-tool-" if fake.provider == "vllm" else "call_"
    assert call["id"].startswith(prefix)
    jsonschema.validate(orjson.loads(call["function"]["arguments"]), WEATHER_SCHEMA)


async def test_streamed_native_tool_call(fake: OpenAICompatFake, client: httpx.AsyncClient) -> None:
    response = await post(fake, client, _tool_body(fake.provider, stream=True))
    chunks = [c for c in sse_payloads(response.text)[:-1] if c["choices"]]
    fragments = [d["tool_calls"][0] for c in chunks if (d := c["choices"][0]["delta"]).get("tool_calls")]
    head, rest = fragments[0], fragments[1:]
    assert head["index"] == 0 and head["id"] and head["type"] == "function"
    assert head["function"] == {"name": "get_weather", "arguments": ""}
    if fake.provider == "together":  # its chunk type requires id, type and name on every delta
        assert rest and all(f["id"] == head["id"] and f["function"]["name"] == "get_weather" for f in rest)
    else:
        assert rest and all(set(f) == {"index", "function"} for f in rest)
    arguments = "".join(f["function"]["arguments"] for f in rest)
    jsonschema.validate(orjson.loads(arguments), WEATHER_SCHEMA)
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"][0]["finish_reason"]] == ["tool_calls"]


async def test_pythonic_tool_call_is_text(fake: OpenAICompatFake, client: httpx.AsyncClient) -> None:
    fake.script.push(Behaviour(tool_format="pythonic"))
    body = (await post(fake, client, _tool_body(fake.provider))).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == NATURAL_STOP[fake.provider]
    assert not choice["message"].get("tool_calls")
    content = choice["message"]["content"]
    assert content.startswith("[get_weather(") and content.endswith(")]")
    assert 'city="Paris"' in content


async def test_json_in_content_tool_call(fake: OpenAICompatFake, client: httpx.AsyncClient) -> None:
    fake.script.push(Behaviour(tool_format="json_in_content"))
    body = (await post(fake, client, _tool_body(fake.provider))).json()
    parsed = orjson.loads(body["choices"][0]["message"]["content"])
    assert parsed["name"] == "get_weather"
    jsonschema.validate(parsed["parameters"], WEATHER_SCHEMA)


async def test_malformed_arguments_are_not_json(fake: OpenAICompatFake, client: httpx.AsyncClient) -> None:
    fake.script.push(Behaviour(tool_args="malformed"))
    arguments = _native_call((await post(fake, client, _tool_body(fake.provider))).json())["function"]["arguments"]
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(arguments)


async def test_schema_invalid_arguments_fail_the_schema(fake: OpenAICompatFake, client: httpx.AsyncClient) -> None:
    fake.script.push(Behaviour(tool_args="schema_invalid"))
    arguments = _native_call((await post(fake, client, _tool_body(fake.provider))).json())["function"]["arguments"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(orjson.loads(arguments), WEATHER_SCHEMA)


async def test_tool_result_gets_a_text_answer(fake: OpenAICompatFake, client: httpx.AsyncClient) -> None:
    body = _tool_body(fake.provider)
    body["messages"] += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    answer = (await post(fake, client, body)).json()["choices"][0]
    assert answer["message"]["content"] and not answer["message"].get("tool_calls")


async def test_named_tool_choice_must_name_a_given_tool(fake: OpenAICompatFake, client: httpx.AsyncClient) -> None:
    choice = {"type": "function", "function": {"name": "launch_rocket"}}
    response = await post(fake, client, _tool_body(fake.provider, tool_choice=choice))
    assert response.status_code == 400


async def test_json_schema_response_format(fake: OpenAICompatFake, client: httpx.AsyncClient) -> None:
    schema = {"type": "object", "properties": {"score": {"type": "integer", "minimum": 1, "maximum": 5}}}
    schema["required"] = ["score"]
    fmt = {"type": "json_schema", "json_schema": {"name": "rating", "schema": schema, "strict": True}}
    body = (await post(fake, client, chat(fake.provider, response_format=fmt))).json()
    jsonschema.validate(orjson.loads(body["choices"][0]["message"]["content"]), schema)


async def test_json_object_response_format_streams_json(fake: OpenAICompatFake, client: httpx.AsyncClient) -> None:
    body = chat(fake.provider, response_format={"type": "json_object"}, stream=True)
    chunks = sse_payloads((await post(fake, client, body)).text)[:-1]
    assert isinstance(orjson.loads(stream_text(chunks)), dict)


async def test_directive_in_the_last_user_message(fake: OpenAICompatFake, client: httpx.AsyncClient) -> None:
    body = chat(fake.provider, 'Hi [[fake: {"text": "Directed answer.", "completion_tokens": 2}]]')
    answer = (await post(fake, client, body)).json()
    assert answer["choices"][0]["message"]["content"] == "Directed answer."
    bad = chat(fake.provider, 'Hi [[fake: {"no_such_field": 1}]]')
    assert (await post(fake, client, bad)).status_code == 400


async def test_pushed_behaviours_are_used_once_in_order(fake: OpenAICompatFake, client: httpx.AsyncClient) -> None:
    fake.script.push(Behaviour(error="server_error"))
    fake.script.push(Behaviour(text="second"))
    statuses = [(await post(fake, client, chat(fake.provider))).status_code for _ in range(3)]
    assert statuses == [500, 200, 200]


ERROR_STATUS: dict[str, dict[str, int]] = {
    "rate_limited": {"groq": 429, "together": 429, "deepinfra": 429, "vllm": 429, "fireworks": 429, "sglang": 429},
    "overloaded": {"groq": 503, "together": 503, "deepinfra": 503, "vllm": 503, "fireworks": 503, "sglang": 503},
    "server_error": {"groq": 500, "together": 500, "deepinfra": 500, "vllm": 500, "fireworks": 500, "sglang": 500},
    "bad_request": {"groq": 400, "together": 400, "deepinfra": 400, "vllm": 400, "fireworks": 400, "sglang": 400},
    "auth": {"groq": 401, "together": 401, "deepinfra": 401, "vllm": 401, "fireworks": 401, "sglang": 401},
    "context_too_long": {"groq": 400, "together": 400, "deepinfra": 400, "vllm": 400, "fireworks": 400, "sglang": 400},
    "model_gone": {"groq": 404, "together": 400, "deepinfra": 404, "vllm": 404, "fireworks": 404, "sglang": 404},
}


@pytest.mark.parametrize("kind", sorted(ERROR_STATUS))
async def test_scripted_errors(fake: OpenAICompatFake, client: httpx.AsyncClient, kind: str) -> None:
    fake.script.push(Behaviour().merged({"error": kind, "retry_after_s": 2.5}))
    response = await post(fake, client, chat(fake.provider))
    assert response.status_code == ERROR_STATUS[kind][fake.provider]
    assert error_message(response.json())
    if kind == "rate_limited":
        assert response.headers["retry-after"] == "2.5"


async def test_malformed_body_is_a_200_that_is_not_json(fake: OpenAICompatFake, client: httpx.AsyncClient) -> None:
    fake.script.push(Behaviour(error="malformed_body"))
    response = await post(fake, client, chat(fake.provider))
    assert response.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(response.content)


async def test_malformed_stream_has_a_garbage_data_line(fake: OpenAICompatFake, client: httpx.AsyncClient) -> None:
    fake.script.push(Behaviour(error="malformed_body"))
    response = await post(fake, client, chat(fake.provider, stream=True))
    assert response.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        sse_payloads(response.text)


async def test_mid_stream_error(fake: OpenAICompatFake, client: httpx.AsyncClient) -> None:
    fake.script.push(Behaviour(mid_stream_error_after=3))
    chunks = sse_payloads((await post(fake, client, chat(fake.provider, stream=True))).text)
    errors = [c for c in chunks if isinstance(c, dict) and "error" in c]
    assert len(errors) == 1
    assert len(stream_text(chunks).split()) == 3
    assert (chunks[-1] == "[DONE]") == (fake.provider in ("vllm", "sglang"))


async def test_disconnect_mid_stream(fake: OpenAICompatFake, client: httpx.AsyncClient) -> None:
    fake.script.push(Behaviour(disconnect_after_chunks=2))
    lines: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):
        async with client.stream("POST", CHAT_PATHS[fake.provider], json=chat(fake.provider, stream=True)) as r:
            lines.extend([line async for line in r.aiter_lines() if line])
    assert "data: [DONE]" not in lines


async def test_paced_stream_delivers_every_token(fake: OpenAICompatFake, client: httpx.AsyncClient) -> None:
    fake.script.push(Behaviour(tokens_per_s=2000, completion_tokens=5))
    chunks = sse_payloads((await post(fake, client, chat(fake.provider, stream=True))).text)
    assert len(stream_text(chunks).split()) == 5 and chunks[-1] == "[DONE]"


async def test_hang_waits_until_the_client_gives_up(fake: OpenAICompatFake, client: httpx.AsyncClient) -> None:
    fake.script.push(Behaviour(hang=True))
    with pytest.raises(httpx.ReadTimeout):
        await post(fake, client, chat(fake.provider), timeout=0.1)
    assert (await post(fake, client, chat(fake.provider))).status_code == 200


async def test_latency_delays_the_answer(fake: OpenAICompatFake, client: httpx.AsyncClient) -> None:
    fake.script.push(Behaviour(latency_ms=300))
    with pytest.raises(httpx.ReadTimeout):
        await post(fake, client, chat(fake.provider), timeout=0.05)


async def test_omit_usage(fake: OpenAICompatFake, client: httpx.AsyncClient) -> None:
    fake.script.push(Behaviour(omit_usage=True), times=2)
    whole = (await post(fake, client, chat(fake.provider))).json()
    assert "usage" not in whole
    options = {"include_usage": True}
    streamed = (await post(fake, client, chat(fake.provider, stream=True, stream_options=options))).text
    assert '"prompt_tokens"' not in streamed


async def test_requests_are_recorded_unless_turned_off(fake: OpenAICompatFake, client: httpx.AsyncClient) -> None:
    await post(fake, client, chat(fake.provider))
    assert fake.requests[-1].json["model"] == SCOUT[fake.provider]
    fake.record = False
    before = len(fake.requests)
    await asyncio.gather(*(post(fake, client, chat(fake.provider)) for _ in range(5)))
    assert len(fake.requests) == before


async def test_models_listing_needs_auth(fake: OpenAICompatFake, client: httpx.AsyncClient) -> None:
    path = CHAT_PATHS[fake.provider].replace("/chat/completions", "/models")
    listing = (await client.get(path)).json()
    entries = listing if isinstance(listing, list) else listing["data"]
    assert SCOUT[fake.provider] in {entry["id"] for entry in entries}
    async with httpx.AsyncClient(base_url=fake.url) as anonymous:
        assert (await anonymous.get(path)).status_code == 401
