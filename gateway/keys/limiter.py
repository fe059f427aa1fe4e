"""Per-key rate limits: requests per minute and tokens per minute (see `gateway.keys.buckets`).

Admission charges the token bucket an estimate (the prompt estimate plus max_tokens);
once the request is over, `settle` corrects the bucket by the difference between that
estimate and the tokens the provider reported. Settling never waits on I/O: in this
process it is arithmetic; against Redis the correction is queued and sent by a
background task (one round trip, after the client has its answer).

With REDIS_URL the buckets live in Redis and one Lua script checks and takes from both
in a single round trip, on Redis's clock, so the limits hold across replicas. Without
Redis, or while it is unreachable, every process keeps its own buckets (a warning is
logged once per outage; Redis trouble never becomes a request error). A correction is
made to the buckets that were charged; a correction Redis refuses is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.errors import Code, GatewayError
from gateway.keys.buckets import SETTLE_LUA, TAKE_LUA, LocalBuckets, Verdict

log = logging.getLogger("corral.keys")

PREFIX = "corral:rl:"
#: After a Redis failure, limits stay per process this long before Redis is tried again.
RETRY_REDIS_S = 5.0
#: How long closing waits for queued corrections to reach Redis.
FLUSH_S = 2.0
LimitName = Literal["requests", "tokens"]


class LimitRefused(GatewayError):
    """429 from a key's own rate limit; `limit` says which one (for the metrics)."""

    def __init__(self, key_id: str, limit: LimitName, value: int, retry_after_ms: int) -> None:
        name = "requests per minute (rpm)" if limit == "requests" else "tokens per minute (tpm)"
        seconds = max(1, math.ceil(retry_after_ms / 1000))
        super().__init__(
            429,
            f"rate limit exceeded: {name} limit of {value} for API key {key_id}; retry after {seconds} s",
            type="rate_limit_error",
            code=Code.RATE_LIMIT_EXCEEDED,
            headers={"retry-after": str(seconds)},
        )
        self.limit: LimitName = limit
        self.reason = "rate_limited"


@dataclass(frozen=True, slots=True)
class TokenCharge:
    """What admission took from a key's token bucket, to be settled against real usage."""

    key_id: str
    tpm: int
    #: The estimate as taken (capped at the limit).
    tokens: int
    #: Taken from the Redis buckets (else from this process's).
    shared: bool


class RateLimiter:
    def __init__(self, redis_url: str | None = None, *, prefix: str = PREFIX) -> None:
        self.redis_url = redis_url
        self.prefix = prefix
        self.local = LocalBuckets()
        self._client: aioredis.Redis | None = None
        self._take_script: Any = None
        self._settle_script: Any = None
        self._down_until = 0.0
        self._down = False
        self._corrections: deque[tuple[TokenCharge, int]] = deque()
        self._wake = asyncio.Event()
        #: Set whenever no correction is queued or being sent.
        self._idle = asyncio.Event()
        self._idle.set()
        self._in_flight = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.redis_url:
            self._client = aioredis.from_url(self.redis_url, socket_connect_timeout=0.5, socket_timeout=0.5)
            self._take_script = self._client.register_script(TAKE_LUA)
            self._settle_script = self._client.register_script(SETTLE_LUA)
            self._task = asyncio.create_task(self._send_corrections(), name="corral-limits-settle")

    async def close(self) -> None:
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), FLUSH_S)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def pending(self) -> int:
        """Corrections queued for Redis or being sent."""
        return len(self._corrections) + self._in_flight

    def token_key(self, key_id: str) -> str:
        return f"{self.prefix}{{{key_id}}}:t"

    async def admit(self, key_id: str, rpm: int | None, tpm: int | None, tokens: int) -> TokenCharge | None:
        """Take one request and `tokens` from the key's buckets, or raise `LimitRefused` (429).
        The charge to settle once the usage is known, or None when there is no token limit."""
        rpm_, tpm_ = rpm or 0, tpm or 0
        if not rpm_ and not tpm_:
            return None
        (which, wait_ms), shared = await self._admit(key_id, rpm_, tpm_, tokens)
        if which == 1:
            raise LimitRefused(key_id, "requests", rpm_, wait_ms)
        if which == 2:
            raise LimitRefused(key_id, "tokens", tpm_, wait_ms)
        return TokenCharge(key_id, tpm_, min(tokens, tpm_), shared) if tpm_ else None

    def settle(self, charge: TokenCharge | None, used_tokens: int) -> None:
        """Correct the key's token bucket by `used_tokens - charge.tokens` (no I/O here)."""
        if charge is None or used_tokens == charge.tokens:
            return
        delta = used_tokens - charge.tokens
        if not charge.shared:
            self.local.settle(charge.key_id, charge.tpm, delta)
        elif self._task is not None:
            self._corrections.append((charge, delta))
            self._idle.clear()
            self._wake.set()

    async def _admit(self, key_id: str, rpm: int, tpm: int, tokens: int) -> tuple[Verdict, bool]:
        if self._take_script is not None and time.monotonic() >= self._down_until:
            keys = [f"{self.prefix}{{{key_id}}}:r", self.token_key(key_id)]
            try:
                result = await self._take_script(keys=keys, args=[rpm, tpm, tokens])
            except (RedisError, OSError, TimeoutError) as exc:
                self._redis_failed(exc)
            else:
                self._redis_ok()
                return (int(result[0]), int(result[1])), True
        return self.local.take(key_id, rpm, tpm, tokens), False

    async def _send_corrections(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._corrections:
                charge, delta = self._corrections.popleft()
                self._in_flight += 1
                try:
                    await self._settle_script(keys=[self.token_key(charge.key_id)], args=[charge.tpm, delta])
                except (RedisError, OSError, TimeoutError) as exc:
                    self._redis_failed(exc)
                finally:
                    self._in_flight -= 1
            self._idle.set()

    def _redis_failed(self, exc: BaseException) -> None:
        self._down_until = time.monotonic() + RETRY_REDIS_S
        if not self._down:
            self._down = True
            log.warning(
                "rate limits: Redis unreachable (%s); limiting per process until it is back", type(exc).__name__
            )

    def _redis_ok(self) -> None:
        if self._down:
            self._down = False
            log.info("rate limits: Redis is back; limits are shared across replicas again")
