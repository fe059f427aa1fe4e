"""Per-key rate limits: requests per minute and tokens per minute, as token buckets.

Each limit is a bucket holding up to `limit` units that refills at `limit` per minute;
a request takes one unit from the request bucket and its token estimate from the token
bucket, both or neither. A request estimated at more tokens than the whole limit is
capped at the limit (it waits for a full bucket instead of never being admitted).

With REDIS_URL the buckets live in Redis and one Lua script checks and takes from both
in a single round trip, on Redis's clock, so the limits hold across replicas. Without
Redis, or while it is unreachable, every process keeps its own buckets (a warning is
logged once per outage; Redis trouble never becomes a request error).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.errors import GatewayError

log = logging.getLogger("corral.keys")

PREFIX = "corral:rl:"
#: After a Redis failure, limits stay per process this long before Redis is tried again.
RETRY_REDIS_S = 5.0

LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local function level(key, limit)
  if limit <= 0 then return nil end
  local v = redis.call('HMGET', key, 'l', 't')
  local lvl = tonumber(v[1])
  local ts = tonumber(v[2])
  if lvl == nil then return limit end
  return math.min(limit, lvl + math.max(0, now - ts) * limit / 60000)
end
local r = level(KEYS[1], rpm)
local k = level(KEYS[2], tpm)
if tpm > 0 and cost > tpm then cost = tpm end
if r ~= nil and r < 1 then return {1, math.ceil((1 - r) * 60000 / rpm)} end
if k ~= nil and k < cost then return {2, math.ceil((cost - k) * 60000 / tpm)} end
if r ~= nil then
  redis.call('HSET', KEYS[1], 'l', tostring(r - 1), 't', now)
  redis.call('PEXPIRE', KEYS[1], 61000)
end
if k ~= nil then
  redis.call('HSET', KEYS[2], 'l', tostring(k - cost), 't', now)
  redis.call('PEXPIRE', KEYS[2], 61000)
end
return {0, 0}
"""


def rate_limited(key_id: str, which: int, limit: int, retry_after_ms: int) -> GatewayError:
    name = "requests per minute (rpm)" if which == 1 else "tokens per minute (tpm)"
    seconds = max(1, math.ceil(retry_after_ms / 1000))
    return GatewayError(
        429,
        f"rate limit exceeded: {name} limit of {limit} for API key {key_id}; retry after {seconds} s",
        type="rate_limit_error",
        code="rate_limit_exceeded",
        headers={"retry-after": str(seconds)},
    )


class LocalBuckets:
    """The same buckets in this process (no Redis)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        #: name -> (level, at)
        self._buckets: dict[str, tuple[float, float]] = {}

    def _level(self, name: str, limit: int, now: float) -> float:
        held = self._buckets.get(name)
        if held is None:
            return float(limit)
        level, at = held
        return min(float(limit), level + max(0.0, now - at) * limit / 60.0)

    def take(self, key_id: str, rpm: int, tpm: int, cost: int) -> tuple[int, int]:
        """(0, 0) when admitted, else (1 for rpm or 2 for tpm, milliseconds to wait)."""
        now = self.clock()
        r = self._level(key_id + ":r", rpm, now) if rpm > 0 else None
        k = self._level(key_id + ":t", tpm, now) if tpm > 0 else None
        cost = min(cost, tpm) if tpm > 0 else cost
        if r is not None and r < 1:
            return 1, math.ceil((1 - r) * 60000 / rpm)
        if k is not None and k < cost:
            return 2, math.ceil((cost - k) * 60000 / tpm)
        if r is not None:
            self._buckets[key_id + ":r"] = (r - 1, now)
        if k is not None:
            self._buckets[key_id + ":t"] = (k - cost, now)
        return 0, 0


class RateLimiter:
    def __init__(self, redis_url: str | None = None, *, prefix: str = PREFIX) -> None:
        self.redis_url = redis_url
        self.prefix = prefix
        self.local = LocalBuckets()
        self._client: aioredis.Redis | None = None
        self._script: object | None = None
        self._down_until = 0.0
        self._down = False

    async def start(self) -> None:
        if self.redis_url:
            self._client = aioredis.from_url(self.redis_url, socket_connect_timeout=0.5, socket_timeout=0.5)
            self._script = self._client.register_script(LUA)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def admit(self, key_id: str, rpm: int | None, tpm: int | None, tokens: int) -> None:
        """Take one request and `tokens` from the key's buckets, or raise 429 with retry-after."""
        rpm_, tpm_ = rpm or 0, tpm or 0
        if not rpm_ and not tpm_:
            return
        which, wait_ms = await self._take(key_id, rpm_, tpm_, tokens)
        if which:
            raise rate_limited(key_id, which, rpm_ if which == 1 else tpm_, wait_ms)

    async def _take(self, key_id: str, rpm: int, tpm: int, tokens: int) -> tuple[int, int]:
        if self._script is not None and time.monotonic() >= self._down_until:
            keys = [f"{self.prefix}{{{key_id}}}:r", f"{self.prefix}{{{key_id}}}:t"]
            try:
                result = await self._script(keys=keys, args=[rpm, tpm, tokens])  # type: ignore[operator]
            except (RedisError, OSError, TimeoutError) as exc:
                self._down_until = time.monotonic() + RETRY_REDIS_S
                if not self._down:
                    self._down = True
                    log.warning(
                        "rate limits: Redis unreachable (%s); limiting per process until it is back",
                        type(exc).__name__,
                    )
            else:
                if self._down:
                    self._down = False
                    log.info("rate limits: Redis is back; limits are shared across replicas again")
                return int(result[0]), int(result[1])
        return self.local.take(key_id, rpm, tpm, tokens)
