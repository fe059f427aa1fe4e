"""The litellm adapter against a real loopback fake: litellm's OpenAI route (`openai/<id>`
with `api_base`) to the vLLM fake, so every byte crosses a socket. Skipped where the
optional `litellm` extra is not installed (the dev extra installs it)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from gateway.catalogue.deployments import Deployment, load_catalogue
from gateway.config import LitellmDeployment, ProviderConfig
from gateway.fakes.script import Behaviour
from gateway.fakes.vllm import VllmFake
from gateway.providers.errors import ErrorKind, UpstreamError
from gateway.providers.litellm.adapter import LitellmProvider

from .conftest import WEATHER_TOOL, chat_request

pytest.importorskip("litellm")

K = ErrorKind
MODEL_ID = "meta-llama/Llama-4-Scout-17B-16E-Instruct"
KEY = "litellm-test-key-123"


def litellm_config(api_base: str, key: str = KEY) -> ProviderConfig:
    deployment = LitellmDeployment(
        model="llama-4-scout",
        litellm_model=f"openai/{MODEL_ID}",
        api_base=api_base,
        api_key=SecretStr(key),
        input_usd_per_1m="0.30",
        output_usd_per_1m="1.20",
        capabilities=["stream", "tools", "tool_choice", "stream_tools"],
    )
    return ProviderConfig(name="litellm", deployments=[deployment])


def litellm_deployment(config: ProviderConfig) -> Deployment:
    catalogue = load_catalogue().with_overrides(LitellmProvider.catalogue_rows(config))
    return next(d for d in catalogue.deployments("llama-4-scout") if d.provider == "litellm")


@pytest.fixture
async def fake() -> AsyncIterator[VllmFake]:
    server = VllmFake(model_id=MODEL_ID, api_key=KEY)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def provider(fake: VllmFake) -> AsyncIterator[LitellmProvider]:
    adapter = LitellmProvider(litellm_config(fake.url + "/v1"))
    await adapter.start()
    yield adapter
    await adapter.close()


def dep(provider: LitellmProvider) -> Deployment:
    return litellm_deployment(provider.config)


async def test_complete_returns_the_shared_shape_with_usage(fake: VllmFake, provider: LitellmProvider) -> None:
    result = await provider.complete(chat_request(max_tokens=32), dep(provider))
    choice = result.body["choices"][0]
    assert result.body["object"] == "chat.completion" and choice["message"]["content"]
    assert choice["finish_reason"] == "stop"
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0 and not result.usage.estimated
    assert result.body["usage"] == result.usage.to_openai()
    sent = fake.requests[-1]
    assert sent.json["model"] == MODEL_ID and sent.json["max_tokens"] == 32
    assert sent.headers["Authorization"] == f"Bearer {KEY}"


async def test_stream_yields_chunks_and_keeps_usage(fake: VllmFake, provider: LitellmProvider) -> None:
    whole = await provider.complete(chat_request(), dep(provider))
    stream = await provider.stream(chat_request(stream=True), dep(provider))
    chunks = [chunk async for chunk in stream]
    await stream.aclose()
    assert chunks and all(c["object"] == "chat.completion.chunk" and c["choices"] for c in chunks)
    assert all("usage" not in c for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == whole.body["choices"][0]["message"]["content"]
    assert stream.finish_reason == "stop"
    assert stream.usage is not None and stream.usage.completion_tokens == whole.usage.completion_tokens
    assert fake.requests[-1].json["stream_options"] == {"include_usage": True}


async def test_tool_calls_come_back_as_tool_calls(provider: LitellmProvider) -> None:
    request = chat_request(
        messages=[{"role": "user", "content": "Weather in Paris?"}], tools=[WEATHER_TOOL], tool_choice="required"
    )
    result = await provider.complete(request, dep(provider))
    (call,) = result.body["choices"][0]["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather" and result.body["choices"][0]["finish_reason"] == "tool_calls"


ERRORS: list[tuple[Behaviour, ErrorKind]] = [
    (Behaviour(error="rate_limited", retry_after_s=3), K.RATE_LIMITED),
    (Behaviour(error="server_error"), K.UPSTREAM_5XX),
    (Behaviour(error="overloaded"), K.OVERLOADED),
    (Behaviour(error="context_too_long"), K.CONTEXT_TOO_LONG),
    (Behaviour(error="bad_request"), K.BAD_REQUEST),
    (Behaviour(error="model_gone"), K.MODEL_GONE),
]


@pytest.mark.parametrize(("behaviour", "kind"), ERRORS, ids=[str(b.error) for b, _ in ERRORS])
@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
async def test_errors_map_onto_the_taxonomy(
    fake: VllmFake, provider: LitellmProvider, behaviour: Behaviour, kind: ErrorKind, streaming: bool
) -> None:
    fake.script.push(behaviour)
    with pytest.raises(UpstreamError) as caught:
        if streaming:
            await provider.stream(chat_request(stream=True), dep(provider))
        else:
            await provider.complete(chat_request(), dep(provider))
    error = caught.value
    assert error.kind is kind, error
    assert error.provider == "litellm" and error.message.startswith("litellm: ")
    if kind is K.RATE_LIMITED:
        assert error.retry_after == 3 and error.status == 429
    assert KEY not in error.message


async def test_a_wrong_key_is_auth_and_never_echoed(fake: VllmFake) -> None:
    adapter = LitellmProvider(litellm_config(fake.url + "/v1", key="the-wrong-key-456"))
    await adapter.start()
    try:
        with pytest.raises(UpstreamError) as caught:
            await adapter.complete(chat_request(), litellm_deployment(adapter.config))
    finally:
        await adapter.close()
    assert caught.value.kind is K.AUTH and "the-wrong-key-456" not in caught.value.message


async def test_a_server_that_is_not_there_is_connection_or_timeout() -> None:
    adapter = LitellmProvider(litellm_config("http://127.0.0.1:9/v1"))
    await adapter.start()
    try:
        with pytest.raises(UpstreamError) as caught:
            await adapter.complete(chat_request(), litellm_deployment(adapter.config))
    finally:
        await adapter.close()
    assert caught.value.kind in (K.CONNECTION, K.TIMEOUT) and caught.value.fall_over
