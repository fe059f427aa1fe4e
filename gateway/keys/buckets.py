"""Token buckets for per-key limits, in this process (`LocalBuckets`) or in Redis (the two
Lua scripts), with the same arithmetic in both.

A bucket holds up to `limit` units and refills at `limit` per minute. Admission takes
one unit from the request bucket and the token estimate from the token bucket, both or
neither; an estimate above the whole limit is capped at the limit (such a request waits
for a full bucket instead of never being admitted).

Settling corrects the token bucket once the provider has reported the real usage: the
difference between what was taken and what was used is given back (never above a full
bucket) or taken as well. An extra charge may leave the bucket below zero, so the next
requests wait until the debt has refilled; the debt is capped at one whole limit, so
one request whose usage dwarfs the limit locks its key out for at most two minutes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

#: (0, 0) when admitted, else (1 for rpm or 2 for tpm, milliseconds to wait).
Verdict = tuple[int, int]

TAKE_LUA = """
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

#: KEYS[1] the token bucket; ARGV: tpm, delta (used - taken: > 0 charges more, < 0 refunds).
#: A missing bucket is full (it expires only once refilled), so a refund has nothing to add.
SETTLE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tpm = tonumber(ARGV[1])
local delta = tonumber(ARGV[2])
local v = redis.call('HMGET', KEYS[1], 'l', 't')
local lvl = tonumber(v[1])
if lvl == nil then
  if delta <= 0 then return 0 end
  lvl = tpm
else
  lvl = math.min(tpm, lvl + math.max(0, now - tonumber(v[2])) * tpm / 60000)
end
lvl = math.max(-tpm, math.min(tpm, lvl - delta))
redis.call('HSET', KEYS[1], 'l', tostring(lvl), 't', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((tpm - lvl) * 60000 / tpm) + 1000)
return 1
"""


def settled_level(level: float, limit: int, delta: int) -> float:
    """A token bucket's level after correcting it by `delta` (used minus taken)."""
    return max(-float(limit), min(float(limit), level - delta))


class LocalBuckets:
    """The same buckets in this process (no Redis, or Redis unreachable)."""

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

    def level(self, key_id: str, tpm: int) -> float:
        """The token bucket's level now (a full bucket when it was never touched)."""
        return self._level(key_id + ":t", tpm, self.clock())

    def take(self, key_id: str, rpm: int, tpm: int, cost: int) -> Verdict:
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

    def settle(self, key_id: str, tpm: int, delta: int) -> None:
        """Correct the token bucket by `delta` = tokens used minus tokens taken."""
        if tpm <= 0 or delta == 0:
            return
        now = self.clock()
        self._buckets[key_id + ":t"] = (settled_level(self._level(key_id + ":t", tpm, now), tpm, delta), now)
