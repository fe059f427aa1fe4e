"""Live rate-limit counters for the fakes, and the header value formats providers use.

Providers describe their limits as windows that refill continuously (Groq's docs example:
30 requests used of 14,400 per day shows `x-ratelimit-reset-requests: 2m59.56s`, i.e. the
time for the bucket to refill), so each limit is a token bucket: `limit` units, refilled
evenly over `period_s`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

Clock = Callable[[], float]


class Bucket:
    def __init__(self, limit: int, period_s: float, clock: Clock = time.monotonic) -> None:
        if limit < 1 or period_s <= 0:
            raise ValueError("a rate limit needs limit >= 1 and a positive period")
        self.limit = limit
        self.period_s = period_s
        self._clock = clock
        self._level = float(limit)
        self._at = clock()

    @property
    def rate(self) -> float:
        """Units refilled per second."""
        return self.limit / self.period_s

    def _refill(self) -> float:
        now = self._clock()
        self._level = min(float(self.limit), self._level + (now - self._at) * self.rate)
        self._at = now
        return self._level

    def remaining(self) -> int:
        return max(0, math.floor(self._refill()))

    def used(self) -> int:
        return self.limit - self.remaining()

    def reset_s(self) -> float:
        """Seconds until the bucket is full again."""
        return (self.limit - self._refill()) / self.rate

    def wait_s(self, amount: float) -> float:
        """Seconds until `amount` units are available (0 when they already are)."""
        missing = min(amount, self.limit) - self._refill()
        return max(0.0, missing / self.rate)

    def take(self, amount: float) -> bool:
        """Spend `amount` if available; a request larger than the whole limit never fits."""
        if amount > self.limit or self._refill() < amount:
            return False
        self._level -= amount
        return True


def go_duration(seconds: float) -> str:
    """Groq's reset format (Go-style durations): "2m59.56s", "7.66s", "420ms", "1h0m0s"."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{max(1, round(seconds * 1000))}ms"
    hours, rest = divmod(round(seconds, 2), 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{round(secs, 2):.2f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{text}"
    if minutes:
        return f"{int(minutes)}m{text}"
    return text


def seconds_header(seconds: float) -> str:
    """A `retry-after`-style number: whole seconds as an integer, else up to 3 decimals."""
    if float(seconds).is_integer():
        return str(int(seconds))
    return f"{seconds:.3f}".rstrip("0").rstrip(".")
