"""Groq-specific behaviour against GroqFake (docs/providers.md#2-groq)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.fakes.script import Behaviour
from gateway.providers.errors import ErrorKind, UpstreamError
from gateway.providers.openai.adapter import OpenAICompatProvider

from .conftest import chat_request, deployment, running_provider, start_fake

DEP = deployment("groq")


@pytest.fixture
async def groq() -> AsyncIterator[tuple[Any, OpenAICompatProvider]]:
    fake = await start_fake("groq")
    try:
        async with running_provider("groq", fake.base_url) as provider:
            yield fake, provider
    finally:
        await fake.stop()


async def test_request_quirks(groq: tuple[Any, OpenAICompatProvider]) -> None:
    fake, provider = groq
    messages = [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "hi", "name": "ann"}]
    await provider.complete(chat_request(messages=messages, max_tokens=32, metadata={"a": "b"}), DEP)
    sent = fake.requests[-1].json
    assert sent["max_completion_tokens"] == 32 and "max_tokens" not in sent and "metadata" not in sent
    assert sent["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    await (await provider.stream(chat_request(stream=True), DEP)).aclose()
    assert "stream_options" not in fake.requests[-1].json


async def test_headers_timings_and_request_id(groq: tuple[Any, OpenAICompatProvider]) -> None:
    _, provider = groq
    result = await provider.complete(chat_request(), DEP)
    limits = result.ratelimit
    assert limits is not None and limits.limit_requests == 14_400 and limits.limit_tokens == 18_000
    assert limits.remaining_requests is not None and limits.remaining_requests < 14_400
    assert limits.reset_requests_s is not None and limits.reset_tokens_s is not None
    assert result.upstream_request_id and result.upstream_request_id.startswith("req_")
    assert result.reported_timing_s is not None and all(t > 0 for t in result.reported_timing_s)
    assert "x_groq" not in result.body and "service_tier" not in result.body
    stream = await provider.stream(chat_request(stream=True), DEP)
    assert stream.ratelimit is not None and stream.ratelimit.limit_requests == 14_400
    chunks = [chunk async for chunk in stream]
    assert all("x_groq" not in chunk for chunk in chunks)
    assert stream.usage is not None and stream.usage.prompt_tokens > 0


async def test_live_rate_limit_carries_retry_after() -> None:
    fake = await start_fake("groq", requests_per_day=1)
    try:
        async with running_provider("groq", fake.base_url) as provider:
            await provider.complete(chat_request(), DEP)
            with pytest.raises(UpstreamError) as caught:
                await provider.complete(chat_request(), DEP)
    finally:
        await fake.stop()
    assert caught.value.kind is ErrorKind.RATE_LIMITED and caught.value.status == 429
    assert caught.value.retry_after is not None and caught.value.retry_after > 0


async def test_scripted_429_without_header_value_uses_groq_wait(groq: tuple[Any, OpenAICompatProvider]) -> None:
    fake, provider = groq
    fake.script.push(Behaviour(error="rate_limited"))
    with pytest.raises(UpstreamError) as caught:
        await provider.complete(chat_request(), DEP)
    assert caught.value.retry_after is not None and caught.value.retry_after >= 6.78


async def test_in_stream_x_groq_error(groq: tuple[Any, OpenAICompatProvider]) -> None:
    fake, provider = groq
    fake.script.push(Behaviour(mid_stream_error_after=1, completion_tokens=10))
    stream = await provider.stream(chat_request(stream=True), DEP)
    with pytest.raises(UpstreamError) as caught:
        async for _ in stream:
            pass
    assert caught.value.kind is ErrorKind.UPSTREAM_5XX and "generation stopped early" in caught.value.message


async def test_retired_model_is_model_gone() -> None:
    fake = await start_fake("groq", retired_models=[DEP.model_id])
    try:
        async with running_provider("groq", fake.base_url) as provider:
            with pytest.raises(UpstreamError) as caught:
                await provider.complete(chat_request(), DEP)
    finally:
        await fake.stop()
    assert caught.value.kind is ErrorKind.MODEL_GONE and caught.value.code == "model_decommissioned"


def test_x_groq_error_chunk_hook() -> None:
    from gateway.config import ProviderConfig
    from gateway.providers.groq import GroqProvider

    provider = GroqProvider(ProviderConfig(name="groq", base_url="http://127.0.0.1:9/openai/v1"))
    error = provider.chunk_error({"choices": [], "x_groq": {"id": "req", "error": "stream stopped: overloaded"}})
    assert error is not None and error.kind is ErrorKind.UPSTREAM_5XX
    assert provider.chunk_error({"choices": [], "x_groq": {"id": "req"}}) is None
