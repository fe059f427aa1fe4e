"""Retries: what is retried, how long the SDK waits, the bounds, and the idempotency key."""

from __future__ import annotations

import httpx
import pytest
from sdk_fakes import FakeGateway, error_response

import corral
from corral._base import MAX_BACKOFF, backoff

MESSAGES = [{"role": "user", "content": "Hi"}]


def _unavailable(retry_after: str | None = None) -> httpx.Response:
    headers = {"retry-after": retry_after} if retry_after is not None else None
    return error_response(503, "upstream_unavailable", type_="upstream_error", headers=headers)


def _client(gateway: FakeGateway, sleeps: list[float], **kwargs: object) -> corral.Corral:
    return gateway.client(sleep=sleeps.append, rng=lambda: 0.0, **kwargs)


@pytest.mark.parametrize("failures", [1, 2])
def test_fails_n_times_then_succeeds(gateway: FakeGateway, failures: int) -> None:
    gateway.push(*[_unavailable() for _ in range(failures)])
    sleeps: list[float] = []
    completion = _client(gateway, sleeps).chat.completions.create(model="m", messages=MESSAGES)
    assert len(gateway.requests) == failures + 1
    assert completion.corral.retries == failures
    assert sleeps == [0.5, 1.0][:failures]


def test_gives_up_after_max_retries(gateway: FakeGateway) -> None:
    gateway.push(*[_unavailable() for _ in range(10)])
    sleeps: list[float] = []
    with pytest.raises(corral.UpstreamUnavailableError):
        _client(gateway, sleeps, max_retries=3).chat.completions.create(model="m", messages=MESSAGES)
    assert len(gateway.requests) == 4
    assert len(sleeps) == 3


def test_max_retries_zero_sends_once(gateway: FakeGateway) -> None:
    gateway.push(_unavailable())
    with pytest.raises(corral.UpstreamUnavailableError):
        _client(gateway, [], max_retries=0).chat.completions.create(model="m", messages=MESSAGES)
    assert len(gateway.requests) == 1


def test_retry_after_is_honoured(gateway: FakeGateway) -> None:
    gateway.push(
        error_response(429, "rate_limit_exceeded", type_="rate_limit_error", headers={"retry-after": "7"})
    )
    sleeps: list[float] = []
    completion = _client(gateway, sleeps).chat.completions.create(model="m", messages=MESSAGES)
    assert sleeps == [7.0]
    assert completion.corral.retries == 1


def test_a_key_still_in_use_is_retried_after_its_retry_after(gateway: FakeGateway) -> None:
    """409 idempotency_key_in_use: the gateway is still running the first try of this call."""
    gateway.push(error_response(409, "idempotency_key_in_use", headers={"retry-after": "1"}))
    sleeps: list[float] = []
    completion = _client(gateway, sleeps).chat.completions.create(model="m", messages=MESSAGES)
    assert sleeps == [1.0]
    assert completion.corral.retries == 1
    keys = {r.headers["idempotency-key"] for r in gateway.requests}
    assert len(keys) == 1


def test_retry_after_on_503_is_honoured(gateway: FakeGateway) -> None:
    gateway.push(_unavailable("2.5"))
    sleeps: list[float] = []
    _client(gateway, sleeps).chat.completions.create(model="m", messages=MESSAGES)
    assert sleeps == [2.5]


def test_a_retry_after_beyond_the_cap_is_raised_at_once(gateway: FakeGateway) -> None:
    gateway.push(
        error_response(429, "rate_limit_exceeded", type_="rate_limit_error", headers={"retry-after": "3600"})
    )
    sleeps: list[float] = []
    with pytest.raises(corral.RateLimitError) as info:
        _client(gateway, sleeps).chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.retry_after == 3600.0
    assert sleeps == []
    assert len(gateway.requests) == 1


def test_connection_errors_are_retried(gateway: FakeGateway) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    gateway.push(refuse, refuse)
    sleeps: list[float] = []
    completion = _client(gateway, sleeps).chat.completions.create(model="m", messages=MESSAGES)
    assert completion.corral.retries == 2
    assert len(gateway.requests) == 3


def test_connection_errors_exhaust_to_api_connection_error(gateway: FakeGateway) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    gateway.push(refuse, refuse, refuse)
    with pytest.raises(corral.APIConnectionError):
        _client(gateway, []).chat.completions.create(model="m", messages=MESSAGES)
    assert len(gateway.requests) == 3


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "invalid_value"),
        (401, "invalid_api_key"),
        (402, "budget_exceeded"),
        (403, "policy_rejected"),
        (404, "model_not_found"),
        (413, "request_too_large"),
        (422, "idempotency_key_reused"),
        (502, "upstream_failed"),
        (502, "tool_call_validation_failed"),
        (504, "upstream_timeout"),
    ],
)
def test_no_retry_on_other_errors(gateway: FakeGateway, status: int, code: str) -> None:
    gateway.push(error_response(status, code), error_response(status, code))
    sleeps: list[float] = []
    with pytest.raises(corral.APIStatusError):
        _client(gateway, sleeps).chat.completions.create(model="m", messages=MESSAGES)
    assert len(gateway.requests) == 1
    assert sleeps == []


def test_idempotency_key_is_stable_across_retries_and_new_per_call(gateway: FakeGateway) -> None:
    gateway.push(_unavailable(), _unavailable())
    client = _client(gateway, [])
    client.chat.completions.create(model="m", messages=MESSAGES)
    client.chat.completions.create(model="m", messages=MESSAGES)
    keys = [r.headers["idempotency-key"] for r in gateway.requests]
    assert len(keys) == 4
    assert keys[0] == keys[1] == keys[2]
    assert keys[3] != keys[0]


def test_caller_supplied_idempotency_key(gateway: FakeGateway) -> None:
    gateway.push(_unavailable())
    _client(gateway, []).chat.completions.create(model="m", messages=MESSAGES, idempotency_key="order-42")
    assert [r.headers["idempotency-key"] for r in gateway.requests] == ["order-42", "order-42"]


def test_the_deadline_stops_retrying(gateway: FakeGateway) -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    def slow_unavailable(request: httpx.Request) -> httpx.Response:
        now[0] += 4.0  # each attempt takes four seconds
        return _unavailable()

    gateway.push(*[slow_unavailable] * 10)
    client = gateway.client(max_retries=10, deadline=10.0, sleep=sleep, clock=lambda: now[0], rng=lambda: 0.0)
    with pytest.raises(corral.UpstreamUnavailableError):
        client.chat.completions.create(model="m", messages=MESSAGES)
    # 4 s, wait 0.5, 4 s (8.5 s), wait 1 s, 4 s (13.5 s: past the deadline, no more waits)
    assert len(gateway.requests) == 3
    assert now[0] == 13.5


def test_the_deadline_refuses_a_wait_that_would_pass_it(gateway: FakeGateway) -> None:
    gateway.push(error_response(429, "rate_limit_exceeded", headers={"retry-after": "30"}))
    sleeps: list[float] = []
    with pytest.raises(corral.RateLimitError):
        _client(gateway, sleeps, deadline=20.0).chat.completions.create(model="m", messages=MESSAGES)
    assert sleeps == []


def test_backoff_doubles_with_jitter_and_caps() -> None:
    assert backoff(0, None, rng=lambda: 0.0) == 0.5
    assert backoff(1, None, rng=lambda: 0.0) == 1.0
    assert backoff(2, None, rng=lambda: 1.0) == pytest.approx(2.0 * 0.75)
    assert backoff(10, None, rng=lambda: 0.0) == MAX_BACKOFF
    assert backoff(3, 4.0, rng=lambda: 0.5) == 4.0
    for attempt in range(6):
        for r in (0.0, 0.3, 0.99):
            value = backoff(attempt, None, rng=[r].pop)
            assert 0.75 * min(0.5 * 2**attempt, MAX_BACKOFF) <= value <= min(0.5 * 2**attempt, MAX_BACKOFF)


def test_streams_are_retried_before_they_start(gateway: FakeGateway) -> None:
    gateway.push(_unavailable())
    sleeps: list[float] = []
    with _client(gateway, sleeps).chat.completions.create(
        model="m", messages=MESSAGES, stream=True
    ) as stream:
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Hello from the fake gateway."
    assert stream.corral.retries == 1
    assert sleeps == [0.5]


async def test_async_retries(gateway: FakeGateway) -> None:
    gateway.push(_unavailable(), error_response(429, "rate_limit_exceeded", headers={"retry-after": "3"}))
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async with gateway.async_client(sleep=sleep, rng=lambda: 0.0) as client:
        completion = await client.chat.completions.create(model="m", messages=MESSAGES)
    assert completion.corral.retries == 2
    assert sleeps == [0.5, 3.0]
    keys = {r.headers["idempotency-key"] for r in gateway.requests}
    assert len(keys) == 1


async def test_async_no_retry_on_400(gateway: FakeGateway) -> None:
    gateway.push(error_response(400, "invalid_value", param="messages"))
    async with gateway.async_client() as client:
        with pytest.raises(corral.BadRequestError) as info:
            await client.chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.param == "messages"
    assert len(gateway.requests) == 1
