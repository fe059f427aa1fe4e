"""Fireworks' own wire facts (docs/providers.md#9-fireworks-ai): the flat error object seen from the live
service, `max_tokens` 200 by default, and an over-long request's `max_tokens` lowered to fit
rather than refused (`context_length_exceeded_behavior: truncate`, the default)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.fakes.fireworks import FireworksFake
from gateway.fakes.script import Behaviour
from tests.fakes import SCOUT, chat

WINDOW = 4096


@pytest.fixture
async def fireworks() -> AsyncIterator[FireworksFake]:
    fake = FireworksFake()
    model = SCOUT["fireworks"]
    fake.models[model] = dataclasses.replace(fake.models[model], context_window=WINDOW)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def client(fireworks: FireworksFake) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": "Bearer test-fireworks-key"}
    async with httpx.AsyncClient(base_url=fireworks.base_url, headers=headers) as http:
        yield http


async def test_not_found_is_the_flat_object_seen_from_the_live_service(client: httpx.AsyncClient) -> None:
    response = await client.post("/chat/completions", json={**chat("fireworks"), "model": "accounts/x/models/y"})
    assert response.status_code == 404
    assert response.json() == {
        "message": "Model not found, inaccessible, and/or not deployed",
        "param": "model",
        "code": "NOT_FOUND",
        "type": "error",
    }


async def test_max_tokens_defaults_to_200(fireworks: FireworksFake, client: httpx.AsyncClient) -> None:
    fireworks.script.push(Behaviour(completion_tokens=300))
    body = (await client.post("/chat/completions", json=chat("fireworks"))).json()
    assert body["usage"]["completion_tokens"] == 200
    assert body["choices"][0]["finish_reason"] == "length"
    fireworks.script.push(Behaviour(completion_tokens=300))
    asked = (await client.post("/chat/completions", json=chat("fireworks", max_tokens=250))).json()
    assert asked["usage"]["completion_tokens"] == 250


async def test_an_over_long_request_has_its_max_tokens_lowered_to_fit(
    fireworks: FireworksFake, client: httpx.AsyncClient
) -> None:
    fireworks.script.push(Behaviour(completion_tokens=5000))
    prompt = "z" * 4 * 4000  # 4,000 prompt tokens: 96 left in the window
    response = await client.post("/chat/completions", json=chat("fireworks", prompt, max_tokens=1000))
    assert response.status_code == 200
    body = response.json()
    assert body["usage"]["prompt_tokens"] == 4000
    assert body["usage"]["completion_tokens"] == WINDOW - 4000
    assert body["choices"][0]["finish_reason"] == "length"
    sent = fireworks.requests[-1].json
    assert sent is not None and sent["max_tokens"] == 1000  # what was received is kept as received


async def test_error_behaviour_refuses_and_a_prompt_that_cannot_fit_is_refused(client: httpx.AsyncClient) -> None:
    strict = chat("fireworks", "z" * 4 * 4000, max_tokens=1000, context_length_exceeded_behavior="error")
    refused = await client.post("/chat/completions", json=strict)
    assert refused.status_code == 400
    assert "maximum context length" in refused.json()["message"]
    too_long = await client.post("/chat/completions", json=chat("fireworks", "z" * 4 * WINDOW))
    assert too_long.status_code == 400
    assert too_long.json()["type"] == "error" and too_long.json()["code"] == "INVALID_ARGUMENT"
