"""The Ollama fake's departures from the shared dialect: keys ignored, long prompts cut
rather than refused, a full queue as 503 instead of a 429, numbered completion ids."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.fakes.ollama import BUSY, OllamaFake
from gateway.fakes.script import Behaviour
from tests.fakes import sse_payloads

PATH = "/v1/chat/completions"


def chat(text: str = "hi", **extra: object) -> dict[str, object]:
    return {"model": "llama4:scout", "messages": [{"role": "user", "content": text}], **extra}


@pytest.fixture
async def fake() -> AsyncIterator[OllamaFake]:
    server = OllamaFake()
    await server.start()
    yield server
    await server.stop()


async def test_any_key_or_none_is_accepted(fake: OllamaFake) -> None:
    for headers in ({}, {"Authorization": "Bearer ollama"}, {"Authorization": "Bearer anything"}):
        async with httpx.AsyncClient(base_url=fake.url, headers=headers) as http:
            assert (await http.post(PATH, json=chat())).status_code == 200


async def test_a_prompt_over_the_window_is_answered_not_refused(fake: OllamaFake) -> None:
    window = fake.models["llama4:scout"].context_window
    async with httpx.AsyncClient(base_url=fake.url) as http:
        response = await http.post(PATH, json=chat("word " * (window * 2)))
    assert response.status_code == 200


async def test_rate_limits_are_its_busy_503_and_missing_models_name_themselves(fake: OllamaFake) -> None:
    fake.script.push(Behaviour(error="rate_limited", retry_after_s=2))
    async with httpx.AsyncClient(base_url=fake.url) as http:
        busy = await http.post(PATH, json=chat())
        missing = await http.post(PATH, json={**chat(), "model": "llama4:maverick"})
    assert busy.status_code == 503 and busy.json()["error"]["message"] == BUSY
    assert missing.status_code == 404 and 'model "llama4:maverick" not found' in missing.json()["error"]["message"]


async def test_ids_are_numbered_and_streams_open_without_a_role_chunk(fake: OllamaFake) -> None:
    async with httpx.AsyncClient(base_url=fake.url) as http:
        first = (await http.post(PATH, json=chat())).json()
        stream = await http.post(PATH, json=chat(stream=True, stream_options={"include_usage": True}))
    assert first["id"] == "chatcmpl-1"
    chunks = sse_payloads(stream.text)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant" and chunks[0]["choices"][0]["delta"]["content"]
    assert chunks[-2]["choices"] == [] and chunks[-2]["usage"]["completion_tokens"] > 0 and chunks[-1] == "[DONE]"
