"""DeepInfra-specific behaviour against DeepInfraFake (docs/providers.md#4-deepinfra)."""

from __future__ import annotations

import pytest

from gateway.fakes.script import Behaviour
from gateway.providers.errors import ErrorKind, UpstreamError

from .conftest import chat_request, deployment, running_provider, start_fake

DEP = deployment("deepinfra")


async def test_usage_extras_dropped_and_no_ratelimit_state() -> None:
    fake = await start_fake("deepinfra")
    try:
        async with running_provider("deepinfra", fake.base_url) as provider:
            result = await provider.complete(chat_request(max_completion_tokens=20), DEP)
            assert fake.requests[-1].json["max_tokens"] == 20
            stream = await provider.stream(chat_request(stream=True), DEP)
            [_ async for _ in stream]
    finally:
        await fake.stop()
    assert "estimated_cost" not in result.body["usage"] and result.ratelimit is None
    assert stream.usage is not None and stream.usage.prompt_tokens == result.usage.prompt_tokens


async def test_concurrency_limit_is_rate_limited() -> None:
    fake = await start_fake("deepinfra", max_concurrency=1)
    try:
        async with running_provider("deepinfra", fake.base_url) as provider:
            fake.script.push(Behaviour(tokens_per_s=5, completion_tokens=50))
            slow = await provider.stream(chat_request(stream=True), DEP)
            with pytest.raises(UpstreamError) as caught:
                await provider.complete(chat_request(), DEP)
            await slow.aclose()
    finally:
        await fake.stop()
    assert caught.value.kind is ErrorKind.RATE_LIMITED and caught.value.status == 429


async def test_omitted_usage_is_estimated() -> None:
    fake = await start_fake("deepinfra")
    try:
        async with running_provider("deepinfra", fake.base_url) as provider:
            fake.script.push(Behaviour(omit_usage=True), times=2)
            result = await provider.complete(chat_request(), DEP)
            stream = await provider.stream(chat_request(stream=True), DEP)
            chunks = [chunk async for chunk in stream]
    finally:
        await fake.stop()
    assert result.usage.estimated and result.usage.completion_tokens > 0
    assert chunks and stream.usage is None, "the gateway estimates a stream's usage itself"
