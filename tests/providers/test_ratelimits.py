"""Rate-limit header parsing: cheap and total."""

from __future__ import annotations

from email.utils import formatdate

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.providers.base import RateLimitState
from gateway.providers.ratelimits import (
    GROQ_HEADERS,
    TOGETHER_HEADERS,
    parse_count,
    parse_duration,
    parse_ratelimit,
    parse_retry_after,
    retry_after_from,
)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7.66s", 7.66),
        ("2m59.56s", 179.56),
        ("1h2m3s", 3723.0),
        ("500ms", 0.5),
        ("1m", 60.0),
        ("250us", 0.00025),
        ("12", 12.0),
        ("0.5", 0.5),
        (" 3s ", 3.0),
        ("1h0.5s", 3600.5),
    ],
)
def test_durations(value: str, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", [None, "", "soon", "5x", "s", "1s2", "-3", "nan", "inf", "1e999", "m5s"])
def test_bad_durations_are_none(value: str | None) -> None:
    assert parse_duration(value) is None


@pytest.mark.parametrize(
    ("value", "count"), [("14400", 14400), ("14400.0", 14400), ("-2", 0), ("x", None), ("", None), ("inf", None)]
)
def test_counts(value: str, count: int | None) -> None:
    assert parse_count(value) == count


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("2") == 2.0
    now = 1_700_000_000.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30.0)
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert parse_retry_after("Wed, 99 Foo 2024 xx") is None


def test_retry_after_ms_wins() -> None:
    assert retry_after_from({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after_from({"retry-after": "9"}) == 9.0
    assert retry_after_from({}) is None


def test_groq_headers_case_insensitive() -> None:
    headers = CIMultiDictProxy(
        CIMultiDict(
            {
                "X-RateLimit-Limit-Requests": "14400",
                "X-RateLimit-Remaining-Requests": "14370",
                "X-RateLimit-Limit-Tokens": "18000",
                "X-RateLimit-Remaining-Tokens": "17997",
                "X-RateLimit-Reset-Requests": "2m59.56s",
                "X-RateLimit-Reset-Tokens": "7.66s",
                "Retry-After": "2",
            }
        )
    )
    state = parse_ratelimit(headers, GROQ_HEADERS)
    assert state is not None
    assert (state.limit_requests, state.remaining_requests) == (14400, 14370)
    assert (state.limit_tokens, state.remaining_tokens) == (18000, 17997)
    assert state.reset_requests_s == pytest.approx(179.56) and state.reset_tokens_s == pytest.approx(7.66)
    assert state.retry_after_s == 2.0


def test_together_headers() -> None:
    headers = {
        "x-ratelimit-limit": "10",
        "x-ratelimit-remaining": "9",
        "x-ratelimit-reset": "1",
        "x-tokenlimit-limit": "1000",
        "x-tokenlimit-remaining": "880.5",
    }
    state = parse_ratelimit(headers, TOGETHER_HEADERS)
    assert state == RateLimitState(
        limit_requests=10, remaining_requests=9, limit_tokens=1000, remaining_tokens=880, reset_requests_s=1.0
    )


def test_nothing_sent_is_none_and_odd_values_never_raise() -> None:
    assert parse_ratelimit({}, GROQ_HEADERS) is None
    assert parse_ratelimit({}, None) is None
    assert parse_ratelimit({"retry-after": "3"}, None) == RateLimitState(retry_after_s=3.0)
    odd = {name: "garbage" for name in ("x-ratelimit-limit-requests", "x-ratelimit-reset-tokens", "retry-after")}
    assert parse_ratelimit(odd, GROQ_HEADERS) is None
