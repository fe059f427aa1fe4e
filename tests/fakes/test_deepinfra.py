"""DeepInfra's own wire facts: estimated_cost, usage on the final chunk, concurrency 429, no headers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from gateway.fakes.deepinfra import DeepInfraFake
from tests.fakes import SCOUT, chat, sse_payloads


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(5000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition never became true")


@pytest.fixture
async def deepinfra() -> AsyncIterator[DeepInfraFake]:
    fake = DeepInfraFake(max_concurrency=1)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def client(deepinfra: DeepInfraFake) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": "Bearer test-deepinfra-key"}
    async with httpx.AsyncClient(base_url=deepinfra.base_url, headers=headers) as http:
        yield http


async def test_usage_has_estimated_cost_and_no_rate_limit_headers(client: httpx.AsyncClient) -> None:
    response = await client.post("/chat/completions", json=chat("deepinfra"))
    usage = response.json()["usage"]
    expected = (usage["prompt_tokens"] * 0.08 + usage["completion_tokens"] * 0.30) / 1_000_000
    assert usage["estimated_cost"] == pytest.approx(expected)
    assert not [h for h in response.headers if h.startswith("x-ratelimit")]


async def test_stream_usage_on_the_final_chunk_plus_include_usage_chunk(client: httpx.AsyncClient) -> None:
    plain = sse_payloads((await client.post("/chat/completions", json=chat("deepinfra", stream=True))).text)[:-1]
    assert plain[-1]["choices"][0]["finish_reason"] == "stop" and "estimated_cost" in plain[-1]["usage"]
    body = chat("deepinfra", stream=True, stream_options={"include_usage": True})
    chunks = sse_payloads((await client.post("/chat/completions", json=body)).text)[:-1]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 16
    assert "usage" in chunks[-2]


async def test_over_the_concurrency_limit_is_rate_limited(deepinfra: DeepInfraFake, client: httpx.AsyncClient) -> None:
    model = SCOUT["deepinfra"]
    hanging = asyncio.create_task(
        client.post("/chat/completions", json=chat("deepinfra", 'hi [[fake: {"hang": true}]]'))
    )
    await until(lambda: deepinfra.in_flight[model] == 1)
    response = await client.post("/chat/completions", json=chat("deepinfra"))
    assert response.status_code == 429
    assert response.json()["error"]["message"] == "Rate limited"
    hanging.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await hanging
    await until(lambda: deepinfra.in_flight[model] == 0)
    assert (await client.post("/chat/completions", json=chat("deepinfra"))).status_code == 200


async def test_context_too_long_message(client: httpx.AsyncClient) -> None:
    response = await client.post("/chat/completions", json=chat("deepinfra", max_tokens=400_000))
    assert response.status_code == 400
    assert "maximum context length of 327680 tokens" in response.json()["error"]["message"]


async def test_auth_messages(deepinfra: DeepInfraFake) -> None:
    async with httpx.AsyncClient(base_url=deepinfra.base_url) as http:
        missing = await http.post("/chat/completions", json=chat("deepinfra"))
        wrong = await http.post("/chat/completions", json=chat("deepinfra"), headers={"Authorization": "Bearer x"})
    assert missing.json()["error"]["message"] == "Not authenticated"
    assert wrong.status_code == 401
