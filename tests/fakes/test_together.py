"""Together's own wire facts: "eos", usage on the final chunk, per-second limits, 403 context."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.fakes.script import Behaviour
from gateway.fakes.together import TogetherFake
from tests.fakes import SCOUT, chat, sse_payloads


@pytest.fixture
async def together() -> AsyncIterator[TogetherFake]:
    fake = TogetherFake(requests_per_second=2, tokens_per_second=500, clock=lambda: 0.0)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def client(together: TogetherFake) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": "Bearer test-together-key"}
    async with httpx.AsyncClient(base_url=together.base_url, headers=headers) as http:
        yield http


async def test_natural_stop_is_eos(client: httpx.AsyncClient) -> None:
    body = (await client.post("/chat/completions", json=chat("together"))).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "eos"
    assert isinstance(choice["seed"], int)
    assert set(body["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}


async def test_stream_usage_is_on_the_final_chunk_and_stream_options_are_ignored(client: httpx.AsyncClient) -> None:
    body = chat("together", stream=True, stream_options={"include_usage": True})
    chunks = sse_payloads((await client.post("/chat/completions", json=body)).text)[:-1]
    final = chunks[-1]
    assert final["choices"][0]["finish_reason"] == "eos"
    assert final["usage"]["completion_tokens"] == 16
    assert all(c["choices"] for c in chunks), "no OpenAI-style usage-only chunk"
    assert all(c["usage"] is None for c in chunks[:-1])
    first = chunks[0]["choices"][0]
    assert first["delta"]["role"] == "assistant" and first["delta"]["content"] == first["text"] != ""


async def test_rate_limit_headers(client: httpx.AsyncClient) -> None:
    response = await client.post("/chat/completions", json=chat("together", max_tokens=4))
    headers = response.headers
    assert headers["x-ratelimit-limit"] == "2" and headers["x-ratelimit-remaining"] == "1"
    assert float(headers["x-ratelimit-reset"]) == pytest.approx(0.5)
    used = response.json()["usage"]["total_tokens"]
    assert headers["x-tokenlimit-limit"] == "500" and headers["x-tokenlimit-remaining"] == str(500 - used)


async def test_request_rate_exhausted_is_dynamic_request_limited(client: httpx.AsyncClient) -> None:
    for _ in range(2):
        await client.post("/chat/completions", json=chat("together", max_tokens=2))
    response = await client.post("/chat/completions", json=chat("together", max_tokens=2))
    assert response.status_code == 429
    assert response.json()["error"]["type"] == "dynamic_request_limited"
    assert response.headers["x-ratelimit-remaining"] == "0" and response.headers["retry-after"] == "1"


async def test_token_rate_exhausted_is_dynamic_token_limited(client: httpx.AsyncClient) -> None:
    response = await client.post("/chat/completions", json=chat("together", "y" * 4000))
    assert response.status_code == 429
    assert response.json()["error"]["type"] == "dynamic_token_limited"


async def test_logprobs_must_be_an_integer(client: httpx.AsyncClient) -> None:
    assert (await client.post("/chat/completions", json=chat("together", logprobs=True))).status_code == 400
    assert (await client.post("/chat/completions", json=chat("together", logprobs=1))).status_code == 200


async def test_context_too_long_is_400_unless_truncating(client: httpx.AsyncClient) -> None:
    """400 as Together's OpenAPI spec and observed answers have it (its error-code page says
    403: the adapter takes both), in the wording observed most recently."""
    response = await client.post("/chat/completions", json=chat("together", max_tokens=400_000))
    assert response.status_code == 400
    assert "is longer than the model's context length" in response.json()["error"]["message"]
    truncating = chat("together", max_tokens=400_000, context_length_exceeded_behavior="truncate")
    assert (await client.post("/chat/completions", json=truncating)).status_code == 200


async def test_errors_carry_an_id_next_to_the_error(together: TogetherFake, client: httpx.AsyncClient) -> None:
    together.script.push(Behaviour(error="model_gone"))
    body = (await client.post("/chat/completions", json=chat("together"))).json()
    assert body["id"]
    assert body["error"]["code"] == "model_not_available"
    assert "non-serverless model" in body["error"]["message"]
    assert SCOUT["together"] in body["error"]["message"]
