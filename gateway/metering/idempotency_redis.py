"""Redis as the optional fast path in front of the SQL idempotency store (`REDIS_URL` set).

The SQL store stays the only thing that decides whether a request runs. Redis holds
finished answers only, so it can say "here is the answer" but never "run it":

- **A replay first looks in Redis.** A kept answer is written to Redis after the SQL row
  says `done`, under `corral:idem:<sha256(scope NUL key)>`, expiring when the claim does.
  A finished claim does not change in SQL before it expires (a release deletes only a
  running claim; a takeover takes only a running claim past its lease or an expired one),
  so what Redis returns is exactly what the database would: a replay, never a run. Any
  replica can replay an answer another replica kept without a database query.
- **Everything else goes to SQL.** A new key, a key whose first request still runs, and a
  miss for any reason (never cached, evicted under memory pressure, a Redis restarted
  empty or flushed, Redis unreachable) take the SQL claim (`INSERT ... ON CONFLICT DO
  NOTHING`), exactly as without Redis. A lost Redis entry therefore costs one database
  round trip, never a second execution; an answer found there is written back to Redis.
- **Nothing "running" is cached.** A stale running marker could only produce false 409s,
  and the database answers that question anyway.
- **An outage is a slow path, not an error.** Redis calls have short timeouts; a failure
  is logged, and Redis is skipped for `BACKOFF_S` so that requests do not each wait for a
  dead server.

Blocking, like the store it wraps: the gateway calls it from a worker thread.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from datetime import UTC, datetime

import orjson
import redis
from redis.exceptions import RedisError

from gateway.metering.idempotency import Answer, Claim, Held, IdempotencyStore

__all__ = ["PREFIX", "RedisFastPath", "redis_key"]

log = logging.getLogger("corral.idempotency")

#: Prefix of every key this module writes.
PREFIX = "corral:idem:"
#: How long Redis is left alone after a failure (seconds).
BACKOFF_S = 1.0
#: Connect and read timeouts for the Redis calls (seconds): a replay never waits long for them.
TIMEOUT_S = 0.5


def redis_key(scope: str, key: str) -> str:
    """The Redis key of an idempotency key (hashed: any printable key, bounded length)."""
    return PREFIX + hashlib.sha256(f"{scope}\0{key}".encode()).hexdigest()


def _encode(held: Held) -> bytes:
    assert held.answer is not None
    answer = held.answer
    head = {
        "body_sha256": held.body_sha256,
        "request_id": held.request_id,
        "status": answer.status,
        "headers": answer.headers,
        "stream": answer.stream,
    }
    return orjson.dumps(head) + b"\n" + answer.body


def _decode(value: bytes) -> Held:
    head_bytes, _, body = value.partition(b"\n")
    head = orjson.loads(head_bytes)
    answer = Answer(int(head["status"]), dict(head["headers"]), body, bool(head["stream"]))
    return Held(str(head["body_sha256"]), str(head["request_id"]), answer)


def _seconds_left(expires_at: datetime | None) -> int:
    if expires_at is None:
        return 0
    if expires_at.tzinfo is None:  # SQLite gives naive datetimes back; they were UTC
        expires_at = expires_at.replace(tzinfo=UTC)
    return int((expires_at - datetime.now(UTC)).total_seconds())


class RedisFastPath:
    """Usage: `RedisFastPath(SqlIdempotencyStore(...), "redis://host:6379/0")` in place of
    the SQL store; `close()` at shutdown. `hits` counts replays served from Redis."""

    def __init__(self, store: IdempotencyStore, url: str) -> None:
        self.store = store
        self.client = redis.Redis.from_url(url, socket_connect_timeout=TIMEOUT_S, socket_timeout=TIMEOUT_S)
        self.hits = 0
        self.misses = 0
        self.errors = 0
        self._skip_until = 0.0
        self._lock = threading.Lock()

    def claim(self, claim: Claim, stale_before: datetime) -> Held | None:
        cached = self._get(redis_key(claim.scope, claim.key))
        if cached is not None:
            return cached
        held = self.store.claim(claim, stale_before)
        if held is not None and held.answer is not None:
            self._put(claim.scope, claim.key, held)
        return held

    def keep(self, claim: Claim, answer: Answer) -> bool:
        kept = self.store.keep(claim, answer)
        if kept:
            self._put(claim.scope, claim.key, Held(claim.body_sha256, claim.request_id, answer, claim.expires_at))
        return kept

    def release(self, claim: Claim) -> None:
        self.store.release(claim)

    def purge(self, now: datetime) -> int:
        return self.store.purge(now)  # Redis entries expire by themselves, with their claims

    def close(self) -> None:
        self.client.close()

    def _available(self) -> bool:
        return time.monotonic() >= self._skip_until

    def _failed(self, exc: Exception) -> None:
        with self._lock:
            self.errors += 1
            self._skip_until = time.monotonic() + BACKOFF_S
        log.warning("idempotency: redis unavailable (%s); using the database alone", type(exc).__name__)

    def _get(self, name: str) -> Held | None:
        if not self._available():
            return None
        try:
            value = self.client.get(name)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return None
        if not isinstance(value, bytes):
            with self._lock:
                self.misses += 1
            return None
        try:
            held = _decode(value)
        except (ValueError, KeyError, TypeError):
            log.error("idempotency: unreadable redis entry %s; asking the database", name)
            return None
        with self._lock:
            self.hits += 1
        return held

    def _put(self, scope: str, key: str, held: Held) -> None:
        seconds = _seconds_left(held.expires_at)
        if seconds <= 0 or not self._available():
            return
        try:
            self.client.set(redis_key(scope, key), _encode(held), ex=seconds)
        except (RedisError, OSError) as exc:
            self._failed(exc)
