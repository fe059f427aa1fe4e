"""The official `openai` package against a running gateway: our compatibility promise."""

from __future__ import annotations

import json
from decimal import Decimal

import openai
import pytest
from openai import OpenAI

from gateway.fakes.script import Behaviour
from tests.api.conftest import SimulatedGateway

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


def client(gateway: SimulatedGateway) -> OpenAI:
    return OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0, timeout=20)


@pytest.mark.parametrize("provider", ["deepinfra", "together", "bedrock", "vllm"])
def test_chat_on_every_backend(gateway: SimulatedGateway, provider: str) -> None:
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="llama-4-maverick",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}],
        max_tokens=64,
        temperature=0.5,
        extra_body={"corral": {"providers": {"only": [provider]}}},
    )
    completion = raw.parse()
    assert completion.model == "llama-4-maverick"
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason in {"stop", "length"}
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert raw.headers["x-corral-provider"] == provider
    assert raw.headers["x-corral-model"]
    assert raw.headers["x-corral-attempts"] == "1"
    assert Decimal(raw.headers["x-corral-cost-usd"]) > 0
    assert raw.headers["x-corral-request-id"].startswith("req_")
    assert gateway.requests(provider), "the request reached the provider's fake"


def test_streaming(gateway: SimulatedGateway) -> None:
    stream = client(gateway).chat.completions.create(
        model="llama-4-scout",
        messages=[{"role": "user", "content": "Tell me a story"}],
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"corral": {"providers": {"only": ["deepinfra"]}}},
    )
    text = []
    usage = None
    finish = None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert "".join(text).strip()
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens > 0


def test_streaming_without_usage_option_still_meters(gateway: SimulatedGateway) -> None:
    stream = client(gateway).chat.completions.create(
        model="llama-4-scout",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        extra_body={"corral": {"providers": {"only": ["vllm"]}}},
    )
    chunks = list(stream)
    assert all(chunk.usage is None for chunk in chunks)
    events = gateway.runtime.sink.events  # type: ignore[union-attr]
    assert events and events[-1].completion_tokens > 0 and events[-1].provider == "vllm"


@pytest.mark.parametrize("provider", ["deepinfra", "vllm", "bedrock"])
def test_tool_calls(gateway: SimulatedGateway, provider: str) -> None:
    oa = client(gateway)
    messages: list[dict[str, object]] = [{"role": "user", "content": "What's the weather in Paris?"}]
    first = oa.chat.completions.create(
        model="llama-4-maverick",
        messages=messages,  # type: ignore[arg-type]
        tools=[WEATHER],  # type: ignore[list-item]
        # Llama 4 on Bedrock takes only `auto` (docs/providers.md#69-llama-4-tool-use-on-bedrock).
        tool_choice="auto" if provider == "bedrock" else "required",
        extra_body={"corral": {"providers": {"only": [provider]}}},
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    args = json.loads(call.function.arguments)  # type: ignore[union-attr]
    assert isinstance(args["city"], str)
    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 18}'})
    second = oa.chat.completions.create(
        model="llama-4-maverick",
        messages=messages,  # type: ignore[arg-type]
        tools=[WEATHER],  # type: ignore[list-item]
        extra_body={"corral": {"providers": {"only": [provider]}}},
    )
    assert second.choices[0].message.content


def test_streamed_tool_call_deltas(gateway: SimulatedGateway) -> None:
    stream = client(gateway).chat.completions.create(
        model="llama-4-scout",
        messages=[{"role": "user", "content": "weather in Oslo?"}],
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        stream=True,
        extra_body={"corral": {"providers": {"only": ["vllm"]}}},
    )
    arguments = ""
    name = None
    for chunk in stream:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or ():
                name = delta.function.name or name  # type: ignore[union-attr]
                arguments += delta.function.arguments or ""  # type: ignore[union-attr]
    assert name == "get_weather"
    assert "city" in json.loads(arguments)


def test_image_input(gateway: SimulatedGateway) -> None:
    pixel = (
        "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJ"
        "RU5ErkJggg=="
    )
    completion = client(gateway).chat.completions.create(
        model="llama-4-maverick",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this image?"},
                    {"type": "image_url", "image_url": {"url": pixel}},
                ],
            }
        ],
        extra_body={"corral": {"providers": {"only": ["bedrock"]}}},
    )
    assert completion.choices[0].message.content
    sent = gateway.requests("bedrock")[-1].json
    blocks = sent["messages"][0]["content"]
    assert any("image" in block for block in blocks)


def test_errors_are_typed_by_the_client(gateway: SimulatedGateway) -> None:
    oa = client(gateway)
    with pytest.raises(openai.NotFoundError) as not_found:
        oa.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert not_found.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        oa.chat.completions.create(
            model="llama-4-scout",
            messages=[],
        )
    assert bad.value.param == "messages"


def test_failover_is_invisible_to_the_client(gateway: SimulatedGateway) -> None:
    gateway.fake("deepinfra").script.default = Behaviour(error="overloaded")
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="llama-4-scout",
        messages=[{"role": "user", "content": "hi"}],
        extra_body={"corral": {"providers": {"order": ["deepinfra", "vllm"], "only": ["deepinfra", "vllm"]}}},
    )
    assert raw.headers["x-corral-provider"] == "vllm"
    assert int(raw.headers["x-corral-attempts"]) >= 2


def test_rate_limited_everywhere_is_429_with_retry_after(gateway: SimulatedGateway) -> None:
    gateway.fake("deepinfra").script.default = Behaviour(error="rate_limited", retry_after_s=7)
    with pytest.raises(openai.RateLimitError) as limited:
        client(gateway).chat.completions.create(
            model="llama-4-scout",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"corral": {"providers": {"only": ["deepinfra"]}}},
        )
    assert limited.value.response.headers["retry-after"] == "7"
    body = limited.value.body
    assert isinstance(body, dict) and body["attempts"][0]["provider"] == "deepinfra"


def test_models_list_marks_simulated_and_retired(gateway: SimulatedGateway) -> None:
    models = client(gateway).models.list()
    ids = {m.id for m in models.data}
    assert ids == {"llama-4-scout", "llama-4-maverick"}
    scout = next(m for m in models.data if m.id == "llama-4-scout")
    deployments = {d["provider"]: d for d in scout.model_extra["deployments"]}  # type: ignore[index]
    started = {name: d for name, d in deployments.items() if d["status"] != "unavailable"}
    assert all(d["simulated"] for d in started.values()) and "fireworks" in started
    # Self-hosted SGLang and a local Ollama are never simulated: they exist once configured.
    assert deployments["sglang"]["status"] == deployments["ollama"]["status"] == "unavailable"
    assert deployments["groq"]["status"] == "retired"
    assert "2026-07-17" in deployments["groq"]["reason"]


@pytest.mark.parametrize("name", ["llama-4-scout", "scout", "meta-llama/Llama-4-Scout-17B-16E-Instruct"])
def test_models_retrieve_resolves_aliases_with_the_lists_detail(gateway: SimulatedGateway, name: str) -> None:
    listed = next(m for m in client(gateway).models.list().data if m.id == "llama-4-scout")
    model = client(gateway).models.retrieve(name)
    assert model.id == "llama-4-scout" and model.object == "model" and model.owned_by == "corral"
    assert model.model_extra == listed.model_extra


def test_models_retrieve_of_an_unknown_model_is_a_404_in_openais_shape(gateway: SimulatedGateway) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client(gateway).models.retrieve("gpt-4o")
    assert caught.value.code == "model_not_found" and "llama-4-scout" in caught.value.message


def test_metrics_show_requests_breakers_and_the_pool(gateway: SimulatedGateway) -> None:
    import httpx

    client(gateway).chat.completions.create(
        model="llama-4-scout",
        messages=[{"role": "user", "content": "hi"}],
        extra_body={"corral": {"providers": {"only": ["vllm"]}}},
    )
    gateway.fake("deepinfra").script.default = Behaviour(error="server_error")
    with pytest.raises(openai.APIStatusError):
        client(gateway).chat.completions.create(
            model="llama-4-scout",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"corral": {"providers": {"only": ["deepinfra"]}}},
        )
    text = httpx.get(gateway.url + "/metrics").text
    served = [line for line in text.splitlines() if line.startswith("corral_requests_total{")]
    wanted = ('model="llama-4-scout"', 'provider="vllm"', 'outcome="served"', 'reason="ok"')
    assert any(all(label in line for label in wanted) for line in served), served
    assert 'corral_upstream_attempts_total{outcome="upstream_5xx",provider="deepinfra"}' in text
    assert 'corral_tokens_total{kind="completion",model="llama-4-scout",provider="vllm"}' in text
    assert "corral_breaker_state{deployment=" in text
    assert "corral_pool_replica_running{replica=" in text
    assert "corral_ledger_queue_depth" in text


def test_client_leaving_mid_stream_is_metered_as_cancelled(gateway: SimulatedGateway) -> None:
    import time

    import httpx

    gateway.fake("deepinfra").script.default = Behaviour(tokens_per_s=40, completion_tokens=400)
    body = {
        "model": "llama-4-maverick",
        "messages": [{"role": "user", "content": "a long story please"}],
        "stream": True,
        "corral": {"providers": {"only": ["deepinfra"]}},
    }
    with httpx.stream("POST", gateway.url + "/v1/chat/completions", json=body, timeout=30) as response:
        assert response.status_code == 200
        received = 0
        for line in response.iter_lines():
            received += line.startswith("data: ")
            if received >= 3:
                break
    deadline = time.monotonic() + 10
    events = gateway.runtime.sink.events  # type: ignore[union-attr]
    while not any(e.status == "cancelled" for e in events):
        assert time.monotonic() < deadline, "the cancelled stream was metered"
        time.sleep(0.05)
    cancelled = next(e for e in events if e.status == "cancelled")
    assert cancelled.provider == "deepinfra"
    assert 0 < cancelled.completion_tokens < 400, "what was generated up to the cancel"
