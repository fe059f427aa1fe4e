"""Rate-limit response headers -> `RateLimitState`.

Each backend names its headers differently; `RateLimitHeaders` says which header
feeds which field, so adding a backend is one table. Parsing runs on every response,
so it is a handful of dict lookups, and it is total: an odd value becomes None,
never an exception. Header lookups are case-insensitive when given aiohttp's
`CIMultiDictProxy`; plain dicts must use lower-case names.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from gateway.providers.base import RateLimitState

__all__ = [
    "GROQ_HEADERS",
    "TOGETHER_HEADERS",
    "RateLimitHeaders",
    "parse_count",
    "parse_duration",
    "parse_ratelimit",
    "parse_retry_after",
    "retry_after_from",
]

_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|ns|h|m|s)")


@dataclass(frozen=True, slots=True)
class RateLimitHeaders:
    """Which response header carries each `RateLimitState` field (None: not sent)."""

    limit_requests: str | None = None
    remaining_requests: str | None = None
    limit_tokens: str | None = None
    remaining_tokens: str | None = None
    reset_requests: str | None = None
    reset_tokens: str | None = None


#: Groq: requests are per day, tokens per minute; resets are Go-style durations ("2m59.56s").
GROQ_HEADERS = RateLimitHeaders(
    limit_requests="x-ratelimit-limit-requests",
    remaining_requests="x-ratelimit-remaining-requests",
    limit_tokens="x-ratelimit-limit-tokens",
    remaining_tokens="x-ratelimit-remaining-tokens",
    reset_requests="x-ratelimit-reset-requests",
    reset_tokens="x-ratelimit-reset-tokens",
)
#: Together: values are per second; `x-ratelimit-reset` is the suggested retry interval.
TOGETHER_HEADERS = RateLimitHeaders(
    limit_requests="x-ratelimit-limit",
    remaining_requests="x-ratelimit-remaining",
    limit_tokens="x-tokenlimit-limit",
    remaining_tokens="x-tokenlimit-remaining",
    reset_requests="x-ratelimit-reset",
)


def parse_duration(value: str | None) -> float | None:
    """Seconds in "7.66s", "2m59.56s", "1h2m3s", "500ms" or a bare number; None if unreadable."""
    if not value:
        return None
    value = value.strip()
    seconds: float | None
    if value[-1:].isdigit():
        try:
            seconds = float(value)
        except ValueError:
            return None
    else:
        seconds = _duration_parts(value)
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def _duration_parts(value: str) -> float | None:
    total = 0.0
    end = 0
    for match in _PART.finditer(value):
        if match.start() != end:
            return None
        total += float(match.group(1)) * _UNIT_S[match.group(2)]
        end = match.end()
    return total if end == len(value) and end > 0 else None


def parse_count(value: str | None) -> int | None:
    """A non-negative integer header ("14400", "14400.0"); None if unreadable."""
    if not value:
        return None
    try:
        return max(int(value), 0)
    except ValueError:
        pass
    try:
        number = float(value)
    except ValueError:
        return None
    return max(int(number), 0) if math.isfinite(number) else None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds: a number, or an HTTP date measured from `now` (epoch seconds)."""
    if not value:
        return None
    seconds = parse_duration(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def retry_after_from(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """`retry-after-ms` (preferred, as the OpenAI-style SDKs do) or `retry-after`, in seconds."""
    millis = parse_duration(headers.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000.0
    return parse_retry_after(headers.get("retry-after"), now)


def parse_ratelimit(
    headers: Mapping[str, str], spec: RateLimitHeaders | None, now: float | None = None
) -> RateLimitState | None:
    """The backend's rate-limit view from response headers; None when it sent none."""
    retry_after = retry_after_from(headers, now)
    if spec is None:
        return None if retry_after is None else RateLimitState(retry_after_s=retry_after)
    get = headers.get
    state = RateLimitState(
        limit_requests=parse_count(get(spec.limit_requests)) if spec.limit_requests else None,
        remaining_requests=parse_count(get(spec.remaining_requests)) if spec.remaining_requests else None,
        limit_tokens=parse_count(get(spec.limit_tokens)) if spec.limit_tokens else None,
        remaining_tokens=parse_count(get(spec.remaining_tokens)) if spec.remaining_tokens else None,
        reset_requests_s=parse_duration(get(spec.reset_requests)) if spec.reset_requests else None,
        reset_tokens_s=parse_duration(get(spec.reset_tokens)) if spec.reset_tokens else None,
        retry_after_s=retry_after,
    )
    if state == _EMPTY:
        return None
    return state


_EMPTY = RateLimitState()
