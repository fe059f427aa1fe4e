"""The contract every OpenAI-dialect adapter keeps, run against each backend's fake."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.config import Timeouts
from gateway.fakes.script import Behaviour
from gateway.providers.base import UpstreamStream
from gateway.providers.errors import ErrorKind, UpstreamError
from gateway.providers.vllm.adapter import VllmProvider

from .conftest import WEATHER_TOOL, Backend, chat_request, closed_port, deployment, fake_base, running_provider

K = ErrorKind
CHOICE_KEYS = {"index", "message", "finish_reason", "logprobs"}
TOP_KEYS = {"id", "object", "created", "model", "choices", "usage", "system_fingerprint"}


async def collect(stream: UpstreamStream) -> list[dict[str, Any]]:
    try:
        return [chunk async for chunk in stream]
    finally:
        await stream.aclose()


def assemble(chunks: list[dict[str, Any]]) -> tuple[str, dict[int, dict[str, str]]]:
    """Concatenate streamed content and tool-call deltas, the way a client does."""
    text = ""
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        delta = chunk["choices"][0]["delta"]
        text += delta.get("content") or ""
        for call in delta.get("tool_calls") or ():
            entry = calls.setdefault(call["index"], {"id": "", "name": "", "arguments": ""})
            entry["id"] = call.get("id") or entry["id"]
            function = call.get("function") or {}
            entry["name"] += function.get("name") or ""
            entry["arguments"] += function.get("arguments") or ""
    return text, calls


async def test_complete(backend: Backend) -> None:
    result = await backend.provider.complete(chat_request(max_tokens=64), backend.deployment)
    body = result.body
    assert set(body) <= TOP_KEYS and body["object"] == "chat.completion"
    choice = body["choices"][0]
    assert set(choice) == CHOICE_KEYS and set(choice["message"]) <= {"role", "content", "tool_calls"}
    assert choice["finish_reason"] == "stop" and choice["message"]["content"]
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0 and not result.usage.estimated
    assert body["usage"] == result.usage.to_openai()
    sent = backend.chats[-1]
    assert sent.json["model"] == backend.deployment.model_id
    assert sent.headers["Content-Type"] == "application/json"
    assert "stream" not in sent.json


async def test_api_key_is_sent_as_bearer(backend: Backend) -> None:
    await backend.provider.complete(chat_request(), backend.deployment)
    key = backend.provider.config.api_key
    if key is not None:
        assert backend.chats[-1].headers["Authorization"] == f"Bearer {key.get_secret_value()}"


async def test_stream_reassembles_and_reports_usage_unasked(backend: Backend) -> None:
    whole = await backend.provider.complete(chat_request(), backend.deployment)
    stream = await backend.provider.stream(chat_request(stream=True), backend.deployment)
    chunks = await collect(stream)
    assert chunks and all(c["object"] == "chat.completion.chunk" and c["choices"] for c in chunks)
    assert all("usage" not in c and set(c) <= TOP_KEYS for c in chunks)
    text, calls = assemble(chunks)
    assert text == whole.body["choices"][0]["message"]["content"] and not calls
    assert stream.finish_reason == "stop"
    assert stream.usage is not None and stream.usage.completion_tokens == whole.usage.completion_tokens


async def test_stream_never_yields_the_usage_only_chunk(backend: Backend) -> None:
    request = chat_request(stream=True, stream_options={"include_usage": True})
    stream = await backend.provider.stream(request, backend.deployment)
    chunks = await collect(stream)
    assert all(c["choices"] for c in chunks)
    assert stream.usage is not None and stream.usage.prompt_tokens > 0


async def test_tool_call(backend: Backend) -> None:
    request = chat_request(
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL],
        tool_choice="required",
    )
    result = await backend.provider.complete(request, backend.deployment)
    choice = result.body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["id"] and call["function"]["name"] == "get_weather"
    assert "city" in orjson.loads(call["function"]["arguments"])


async def test_streamed_tool_call_reassembles_into_valid_json(backend: Backend) -> None:
    request = chat_request(
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        stream=True,
    )
    stream = await backend.provider.stream(request, backend.deployment)
    _, calls = assemble(await collect(stream))
    assert stream.finish_reason == "tool_calls"
    assert list(calls) == [0] and calls[0]["name"] == "get_weather" and calls[0]["id"]
    assert "city" in orjson.loads(calls[0]["arguments"])


async def test_tool_results_and_images_reach_the_backend(backend: Backend) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "Weather where this photo was taken?"}, image]},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 21}'},
    ]
    result = await backend.provider.complete(chat_request(messages=messages, tools=[WEATHER_TOOL]), backend.deployment)
    assert result.body["choices"][0]["finish_reason"] in ("stop", "tool_calls")
    sent = backend.chats[-1].json["messages"]
    assert sent[0]["content"][1] == image and sent[1]["tool_calls"] == [call] and sent[2]["tool_call_id"] == "call_1"


SCRIPTED = [
    ("rate_limited", K.RATE_LIMITED),
    ("overloaded", K.OVERLOADED),
    ("server_error", K.UPSTREAM_5XX),
    ("bad_request", K.BAD_REQUEST),
    ("auth", K.AUTH),
    ("context_too_long", K.CONTEXT_TOO_LONG),
    ("model_gone", K.MODEL_GONE),
]


@pytest.mark.parametrize(("error", "kind"), SCRIPTED)
@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
async def test_scripted_errors(backend: Backend, error: Any, kind: ErrorKind, streaming: bool) -> None:
    if error == "rate_limited" and not backend.fake.sends_429:
        kind = K.OVERLOADED  # Ollama has no rate limits: a full queue is its 503 "server busy"
    backend.fake.script.push(Behaviour(error=error, retry_after_s=2))
    with pytest.raises(UpstreamError) as caught:
        if streaming:
            await backend.provider.stream(chat_request(stream=True), backend.deployment)
        else:
            await backend.provider.complete(chat_request(), backend.deployment)
    err = caught.value
    assert err.kind is kind, err
    assert err.provider == backend.name and err.message.startswith(f"{backend.name}: ")
    assert err.status is not None and err.status >= 400
    if kind is K.RATE_LIMITED:
        assert err.retry_after == 2
    for secret in ("test-groq-key", "test-together-key", "test-deepinfra-key", "test-fireworks-key"):
        assert secret not in err.message


async def test_malformed_body(backend: Backend) -> None:
    backend.fake.script.push(Behaviour(error="malformed_body"))
    with pytest.raises(UpstreamError) as caught:
        await backend.provider.complete(chat_request(), backend.deployment)
    assert caught.value.kind is K.MALFORMED_RESPONSE


async def test_malformed_stream(backend: Backend) -> None:
    backend.fake.script.push(Behaviour(error="malformed_body"))
    stream = await backend.provider.stream(chat_request(stream=True), backend.deployment)
    with pytest.raises(UpstreamError) as caught:
        await collect(stream)
    assert caught.value.kind is K.MALFORMED_RESPONSE


async def test_wrong_api_key_is_auth_where_keys_are_checked(backend: Backend) -> None:
    async with running_provider(backend.name, fake_base(backend.name, backend.fake), api_key="wrong") as provider:
        if backend.fake.api_key is None:
            # A server started without a key (Ollama; SGLang or vLLM without --api-key) ignores one.
            assert (await provider.complete(chat_request(), backend.deployment)).body["choices"]
            return
        with pytest.raises(UpstreamError) as caught:
            await provider.complete(chat_request(), backend.deployment)
    assert caught.value.kind is K.AUTH and "wrong" not in caught.value.message


async def test_mid_stream_disconnect_raises_from_the_iterator(backend: Backend) -> None:
    backend.fake.script.push(Behaviour(disconnect_after_chunks=2, completion_tokens=20))
    stream = await backend.provider.stream(chat_request(stream=True), backend.deployment)
    seen = []
    with pytest.raises(UpstreamError) as caught:
        async for chunk in stream:
            seen.append(chunk)
    await stream.aclose()
    assert caught.value.kind is K.UPSTREAM_5XX and caught.value.code == "stream_truncated"
    assert seen, "chunks before the cut were passed on as they came"


async def test_mid_stream_error_raises_from_the_iterator(backend: Backend) -> None:
    backend.fake.script.push(Behaviour(mid_stream_error_after=2, completion_tokens=20))
    stream = await backend.provider.stream(chat_request(stream=True), backend.deployment)
    with pytest.raises(UpstreamError) as caught:
        await collect(stream)
    assert caught.value.fall_over and caught.value.provider == backend.name


async def test_hang_with_short_first_byte_timeout_is_timeout(backend: Backend) -> None:
    timeouts = Timeouts(connect_s=2.0, first_byte_s=0.2, total_s=30.0)
    async with running_provider(backend.name, fake_base(backend.name, backend.fake), timeouts=timeouts) as provider:
        for streaming in (False, True):
            backend.fake.script.push(Behaviour(hang=True))
            with pytest.raises(UpstreamError) as caught:
                if streaming:
                    await provider.stream(chat_request(stream=True), backend.deployment)
                else:
                    await provider.complete(chat_request(), backend.deployment)
            assert caught.value.kind is K.TIMEOUT


@pytest.mark.parametrize("name", ["groq", "together", "deepinfra", "fireworks", "sglang", "ollama"])
async def test_connection_refused_is_connection(name: str) -> None:
    async with running_provider(name, f"http://127.0.0.1:{closed_port()}/v1") as provider:
        with pytest.raises(UpstreamError) as caught:
            await provider.complete(chat_request(), deployment(name))
        assert caught.value.kind is K.CONNECTION
        with pytest.raises(UpstreamError) as caught:
            await provider.stream(chat_request(stream=True), deployment(name))
        assert caught.value.kind is K.CONNECTION


async def test_aclose_before_iterating_releases(backend: Backend) -> None:
    stream = await backend.provider.stream(chat_request(stream=True), backend.deployment)
    await stream.aclose()
    await stream.aclose()
    result = await backend.provider.complete(chat_request(), backend.deployment)
    assert result.body["choices"]


async def test_many_requests_share_one_client_and_connection(backend: Backend) -> None:
    client = backend.provider.client
    for _ in range(5):
        await backend.provider.complete(chat_request(), backend.deployment)
        await collect(await backend.provider.stream(chat_request(stream=True), backend.deployment))
    assert backend.provider.client is client
    (origin,) = client._origins.values()
    assert origin.open == 1, "sequential requests reuse one keep-alive connection"


async def test_abandoned_stream_releases_its_connection(backend: Backend) -> None:
    backend.fake.script.push(Behaviour(completion_tokens=50, tokens_per_s=200))
    stream = await backend.provider.stream(chat_request(stream=True), backend.deployment)
    async for _ in stream:
        break
    await stream.aclose()
    assert stream.usage is None
    result = await backend.provider.complete(chat_request(), backend.deployment)
    assert result.body["choices"]
    if isinstance(backend.provider, VllmProvider):
        assert all(state.inflight == 0 for state in backend.provider.pool_state())
