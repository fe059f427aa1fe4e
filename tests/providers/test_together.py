"""Together-specific behaviour against TogetherFake (docs/providers.md#3-together-ai)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.providers.errors import ErrorKind, UpstreamError
from gateway.providers.openai.adapter import OpenAICompatProvider

from .conftest import chat_request, deployment, running_provider, start_fake

DEP = deployment("together", "llama-4-maverick")


@pytest.fixture
async def together() -> AsyncIterator[tuple[Any, OpenAICompatProvider]]:
    fake = await start_fake("together")
    try:
        async with running_provider("together", fake.base_url) as provider:
            yield fake, provider
    finally:
        await fake.stop()


async def test_eos_is_stop_and_extras_are_dropped(together: tuple[Any, OpenAICompatProvider]) -> None:
    _, provider = together
    result = await provider.complete(chat_request(), DEP)
    choice = result.body["choices"][0]
    assert choice["finish_reason"] == "stop" and "seed" not in choice and "prompt" not in result.body
    stream = await provider.stream(chat_request(stream=True), DEP)
    chunks = [chunk async for chunk in stream]
    assert stream.finish_reason == "stop" and chunks[-1]["choices"][0]["finish_reason"] == "stop"
    for chunk in chunks:
        assert set(chunk["choices"][0]["delta"]) <= {"role", "content", "tool_calls"}
        assert "text" not in chunk["choices"][0] and "seed" not in chunk["choices"][0]
    assert stream.usage is not None and stream.usage.completion_tokens == result.usage.completion_tokens


async def test_request_translation_reaches_the_fake(together: tuple[Any, OpenAICompatProvider]) -> None:
    fake, provider = together
    await provider.complete(chat_request(logprobs=True, top_logprobs=3, max_completion_tokens=40, user="u"), DEP)
    sent = fake.requests[-1].json
    assert sent["logprobs"] == 3 and "top_logprobs" not in sent
    assert sent["max_tokens"] == 40 and "max_completion_tokens" not in sent and "user" not in sent
    await (await provider.stream(chat_request(stream=True), DEP)).aclose()
    assert "stream_options" not in fake.requests[-1].json


async def test_rate_limit_headers(together: tuple[Any, OpenAICompatProvider]) -> None:
    _, provider = together
    result = await provider.complete(chat_request(), DEP)
    limits = result.ratelimit
    assert limits is not None and limits.limit_requests == 50 and limits.limit_tokens == 50_000
    assert limits.remaining_requests is not None and limits.remaining_tokens is not None
    assert result.upstream_request_id


async def test_live_429_uses_retry_hints() -> None:
    fake = await start_fake("together", requests_per_second=1)
    try:
        async with running_provider("together", fake.base_url) as provider:
            await provider.complete(chat_request(), DEP)
            with pytest.raises(UpstreamError) as caught:
                await provider.complete(chat_request(), DEP)
    finally:
        await fake.stop()
    assert caught.value.kind is ErrorKind.RATE_LIMITED
    assert caught.value.retry_after is not None and caught.value.retry_after > 0


async def test_context_too_long_is_recognised() -> None:
    fake = await start_fake("together")
    try:
        async with running_provider("together", fake.base_url) as provider:
            with pytest.raises(UpstreamError) as caught:
                await provider.complete(chat_request(max_tokens=10_000_000), DEP)
    finally:
        await fake.stop()
    assert caught.value.kind is ErrorKind.CONTEXT_TOO_LONG and caught.value.status == 400
