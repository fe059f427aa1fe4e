"""Groq's own wire facts: x_groq, usage timings, RPD/TPM headers and 429s, refused parameters."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.fakes.groq import GroqFake
from gateway.fakes.script import Behaviour
from tests.fakes import SCOUT, chat, sse_payloads

MODEL = SCOUT["groq"]
DURATION = re.compile(r"^(\d+h)?(\d+m)?(\d+(\.\d+)?s|\d+ms)$")
TIMINGS = {"queue_time", "prompt_time", "completion_time", "total_time"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def groq(clock: Clock) -> AsyncIterator[GroqFake]:
    fake = GroqFake(requests_per_day=3, tokens_per_minute=200, clock=clock)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def client(groq: GroqFake) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=groq.base_url, headers={"Authorization": "Bearer test-groq-key"}) as http:
        yield http


async def test_answer_carries_x_groq_and_timings(client: httpx.AsyncClient) -> None:
    response = await client.post("/chat/completions", json=chat("groq"))
    body = response.json()
    assert body["x_groq"]["id"].startswith("req_") and response.headers["x-request-id"] == body["x_groq"]["id"]
    assert set(body["usage"]) >= TIMINGS
    assert body["usage"]["total_time"] == pytest.approx(body["usage"]["prompt_time"] + body["usage"]["completion_time"])
    assert body["system_fingerprint"].startswith("fp_")


async def test_stream_has_x_groq_id_first_and_last_with_usage_on_the_final_chunk(client: httpx.AsyncClient) -> None:
    chunks = sse_payloads((await client.post("/chat/completions", json=chat("groq", stream=True))).text)[:-1]
    with_x_groq = [i for i, c in enumerate(chunks) if "x_groq" in c]
    assert with_x_groq == [0, len(chunks) - 1]
    final = chunks[-1]
    assert final["choices"][0]["finish_reason"] == "stop"
    assert final["x_groq"]["id"] == chunks[0]["x_groq"]["id"]
    assert final["x_groq"]["usage"]["completion_tokens"] == 16 and set(final["x_groq"]["usage"]) >= TIMINGS
    assert "usage" not in final


async def test_include_usage_adds_the_standard_usage_chunk(client: httpx.AsyncClient) -> None:
    body = chat("groq", stream=True, stream_options={"include_usage": True})
    chunks = sse_payloads((await client.post("/chat/completions", json=body)).text)[:-1]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 16
    assert "usage" in chunks[-2]["x_groq"]


async def test_rate_limit_headers_count_down(client: httpx.AsyncClient, clock: Clock) -> None:
    first = await client.post("/chat/completions", json=chat("groq", max_tokens=4))
    headers = first.headers
    assert headers["x-ratelimit-limit-requests"] == "3" and headers["x-ratelimit-limit-tokens"] == "200"
    assert headers["x-ratelimit-remaining-requests"] == "2"
    used = first.json()["usage"]["total_tokens"]
    assert headers["x-ratelimit-remaining-tokens"] == str(200 - used)
    assert headers["x-ratelimit-reset-requests"] == "8h0m0s"
    assert DURATION.match(headers["x-ratelimit-reset-tokens"])
    clock.now += 3600  # refills 1/8 of a request: 2.125 left, 1.125 after this one
    second = await client.post("/chat/completions", json=chat("groq", max_tokens=4))
    assert second.headers["x-ratelimit-remaining-requests"] == "1"
    assert second.headers["x-ratelimit-reset-requests"] == "15h0m0s"


async def test_exhausted_requests_per_day_is_429(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        assert (await client.post("/chat/completions", json=chat("groq", max_tokens=2))).status_code == 200
    response = await client.post("/chat/completions", json=chat("groq", max_tokens=2))
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["type"] == "requests" and error["code"] == "rate_limit_exceeded"
    assert "requests per day (RPD): Limit 3, Used 3, Requested 1" in error["message"]
    assert response.headers["retry-after"] == "28800"
    assert response.headers["x-ratelimit-remaining-requests"] == "0"


async def test_exhausted_tokens_per_minute_is_429(client: httpx.AsyncClient) -> None:
    body = chat("groq", "x" * 400, max_tokens=4)  # 100 prompt + 4 completion tokens
    assert (await client.post("/chat/completions", json=body)).status_code == 200
    response = await client.post("/chat/completions", json=body)
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["type"] == "tokens"
    assert "tokens per minute (TPM): Limit 200, Used 104, Requested 104. Please try again in 2.4s." in error["message"]
    assert response.headers["retry-after"] == "3"


async def test_request_larger_than_the_token_limit_is_413(client: httpx.AsyncClient) -> None:
    response = await client.post("/chat/completions", json=chat("groq", "x" * 1000, max_tokens=4))
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "rate_limit_exceeded" and "Limit 200, Requested 254" in error["message"]


async def test_scripted_rate_limit_says_when_to_retry(groq: GroqFake, client: httpx.AsyncClient) -> None:
    groq.script.push(Behaviour(error="rate_limited"))
    response = await client.post("/chat/completions", json=chat("groq"))
    assert "Please try again in 6.78s." in response.json()["error"]["message"]
    assert response.headers["retry-after"] == "7"
    assert "x-ratelimit-remaining-tokens" in response.headers


async def test_retired_model_is_decommissioned(groq: GroqFake, client: httpx.AsyncClient) -> None:
    groq.retired_models.add(MODEL)
    response = await client.post("/chat/completions", json=chat("groq"))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "model_decommissioned"


async def test_unknown_model_is_model_not_found(client: httpx.AsyncClient) -> None:
    response = await client.post("/chat/completions", json={**chat("groq"), "model": "llama-9"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"logit_bias": {"1": 2}}, "logit_bias"),
        ({"max_completion_tokens": 9000}, "max_completion_tokens"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"temperature": 2.5}, "temperature"),
    ],
)
async def test_unsupported_parameters_are_400(client: httpx.AsyncClient, extra: dict[str, object], param: str) -> None:
    response = await client.post("/chat/completions", json=chat("groq", **extra))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param


async def test_message_name_is_400(client: httpx.AsyncClient) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi", "name": "ada"}]}
    response = await client.post("/chat/completions", json=body)
    assert response.status_code == 400
    assert "property 'name' is unsupported" in response.json()["error"]["message"]


async def test_context_error_shape(groq: GroqFake, client: httpx.AsyncClient) -> None:
    groq.script.push(Behaviour(error="context_too_long"))
    response = await client.post("/chat/completions", json=chat("groq"))
    assert response.json()["error"] == {
        "message": "Please reduce the length of the messages or completion.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }


async def test_mid_stream_error_uses_x_groq_error(groq: GroqFake, client: httpx.AsyncClient) -> None:
    groq.script.push(Behaviour(mid_stream_error_after=1))
    chunks = sse_payloads((await client.post("/chat/completions", json=chat("groq", stream=True))).text)
    assert "error" in chunks[-1] and chunks[-1]["x_groq"]["error"]


async def test_the_max_tokens_budget_counts_against_tpm_before_the_answer(client: httpx.AsyncClient) -> None:
    """Groq reserves prompt + max_tokens (docs/providers.md#24-groq-rate-limits, rule G3): a short answer asked
    for with a budget over the TPM is a 413 before anything runs, and a budget that fits
    is what the remaining-tokens header has taken."""
    response = await client.post("/chat/completions", json=chat("groq", max_tokens=500))
    assert response.status_code == 413
    assert "Limit 200, Requested 502" in response.json()["error"]["message"]  # 2 prompt tokens + 500
    fits = await client.post("/chat/completions", json=chat("groq", max_tokens=150))
    assert fits.status_code == 200
    assert fits.json()["usage"]["completion_tokens"] < 150
    assert fits.headers["x-ratelimit-remaining-tokens"] == str(200 - fits.json()["usage"]["prompt_tokens"] - 150)
