"""The pure half of the client: defaults, request building, retry decisions and backoff.

Nothing here sends, sleeps or reads the clock by itself; `_client.py` supplies those.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import tenacity

from corral._errors import (
    APIConnectionError,
    APIStatusError,
    IdempotencyInProgressError,
    RateLimitError,
    UpstreamUnavailableError,
)
from corral._version import __version__

DEFAULT_BASE_URL = "http://127.0.0.1:8080"
#: Like openai-python: ten minutes in all, five seconds to connect.
DEFAULT_TIMEOUT = httpx.Timeout(600.0, connect=5.0)
DEFAULT_MAX_RETRIES = 2
#: Bound on the whole call, retries and waits included (seconds); None for no bound.
DEFAULT_DEADLINE: float | None = 600.0
INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 8.0
#: Fraction by which a backoff is shortened at random.
JITTER = 0.25
#: Longest Retry-After the SDK waits out; a longer one is raised to the caller at once.
MAX_RETRY_AFTER = 60.0
RETRY_STATUSES = frozenset({429, 503})

ENV_BASE_URL = "CORRAL_BASE_URL"
ENV_API_KEY = "CORRAL_API_KEY"

TimeoutLike = float | httpx.Timeout | None


class NotGiven:
    """Marks an option the caller left out (so that `timeout=None`, no timeout, stays expressible)."""

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN = NotGiven()


@dataclass(frozen=True, slots=True)
class RequestOptions:
    """Per-call overrides: extra headers, a timeout, or an idempotency key of your own."""

    extra_headers: Mapping[str, str] | None = None
    timeout: TimeoutLike | NotGiven = NOT_GIVEN
    idempotency_key: str | None = None


def normalize_base_url(url: str | httpx.URL) -> httpx.URL:
    """The gateway's root: trailing slashes and a trailing `/v1` (as an OpenAI client would be
    configured) are dropped, since the SDK adds `/v1/...` itself."""
    text = str(url).strip().rstrip("/")
    if text.endswith("/v1"):
        text = text[: -len("/v1")]
    parsed = httpx.URL(text)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"base_url must be an http(s) URL, got {str(url)!r}")
    return parsed


def as_timeout(value: TimeoutLike) -> httpx.Timeout:
    if isinstance(value, httpx.Timeout):
        return value
    if value is not None and (isinstance(value, bool) or value <= 0):
        raise ValueError(
            f"timeout must be a positive number of seconds, an httpx.Timeout or None, got {value!r}"
        )
    return httpx.Timeout(value)


def clamp_timeout(timeout: httpx.Timeout, remaining: float | None) -> httpx.Timeout:
    """`timeout` with every phase cut to the time left before the deadline."""
    if remaining is None:
        return timeout
    left = max(remaining, 0.001)

    def cut(value: float | None) -> float:
        return left if value is None else min(value, left)

    return httpx.Timeout(
        connect=cut(timeout.connect), read=cut(timeout.read), write=cut(timeout.write), pool=cut(timeout.pool)
    )


def new_idempotency_key() -> str:
    return f"corral-{uuid.uuid4()}"


def build_headers(
    api_key: str,
    default_headers: Mapping[str, str],
    options: RequestOptions,
    *,
    stream: bool,
    idempotency_key: str | None,
) -> dict[str, str]:
    headers = {
        "authorization": f"Bearer {api_key}",
        "accept": "text/event-stream" if stream else "application/json",
        "user-agent": f"corral-python/{__version__}",
    }
    if idempotency_key:
        headers["idempotency-key"] = idempotency_key
    headers.update({k.lower(): v for k, v in default_headers.items()})
    headers.update({k.lower(): v for k, v in (options.extra_headers or {}).items()})
    return headers


def build_request(
    method: str,
    url: httpx.URL,
    *,
    headers: Mapping[str, str],
    body: Mapping[str, Any] | None = None,
    params: Mapping[str, str] | None = None,
) -> httpx.Request:
    content: bytes | None = None
    all_headers = dict(headers)
    if body is not None:
        content = json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=_json_default).encode()
        all_headers["content-type"] = "application/json"
    return httpx.Request(method, url, headers=all_headers, params=params, content=content)


def _json_default(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def should_retry(exc: BaseException) -> bool:
    """Retry only what is not the caller's fault: no response at all (timeouts included:
    the retry carries the same Idempotency-Key, so the gateway runs the request at most
    once), 429, 503, and 409 idempotency_key_in_use (the first try is still running)."""
    if isinstance(exc, APIConnectionError | IdempotencyInProgressError):
        return True
    return isinstance(exc, APIStatusError) and exc.status_code in RETRY_STATUSES


def retry_after_of(exc: BaseException) -> float | None:
    if isinstance(exc, RateLimitError | UpstreamUnavailableError | IdempotencyInProgressError):
        return exc.retry_after
    return None


def backoff(retries_so_far: int, retry_after: float | None, *, rng: Callable[[], float]) -> float:
    """Seconds to wait before the next try: the server's Retry-After when it sent one, else
    0.5 s doubling up to 8 s, shortened at random by up to 25%."""
    if retry_after is not None:
        return retry_after
    base = min(INITIAL_BACKOFF * 2.0**retries_so_far, MAX_BACKOFF)
    return base * (1.0 - JITTER * rng())


@dataclass(slots=True)
class RetryController:
    """Tenacity's `retry`, `wait` and `stop` for one logical call: bounded by `max_retries`, by
    `deadline` seconds from `started`, and by `max_retry_after` for server-requested waits."""

    max_retries: int
    deadline: float | None
    started: float
    clock: Callable[[], float]
    rng: Callable[[], float]
    max_retry_after: float = MAX_RETRY_AFTER

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - (self.clock() - self.started)

    def retry(self, state: tenacity.RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        return exc is not None and should_retry(exc)

    def wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = retry_after_of(exc) if exc is not None else None
        return backoff(state.attempt_number - 1, retry_after, rng=self.rng)

    def stop(self, state: tenacity.RetryCallState) -> bool:
        if state.attempt_number > self.max_retries:
            return True
        if state.upcoming_sleep > self.max_retry_after:
            return True
        remaining = self.remaining()
        return remaining is not None and state.upcoming_sleep >= remaining

    def tenacity_kwargs(self) -> dict[str, Any]:
        return {"retry": self.retry, "wait": self.wait, "stop": self.stop, "reraise": True}


def check_max_retries(value: object) -> int:
    if value is None or isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(
            f"max_retries must be an int >= 0 (0 disables retries; `deadline` bounds the time), got {value!r}"
        )
    return value


def check_deadline(value: object) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"deadline must be a positive number of seconds or None, got {value!r}")
    return float(value)
