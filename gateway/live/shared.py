"""Share breaker state, rate-limit cooldowns, deployments taken out because their model is
gone, and latency samples across gateway replicas through Redis (when REDIS_URL is set).

Each replica keeps its own `LiveState` and routes from it with no Redis round-trip
on the request path. Changes are published on one pub/sub channel and applied by
every other replica; breaker, cooldown and take-out keys with expiries let a replica that
starts later catch up. If Redis goes away, replicas keep routing on local state and
reconnect in the background: Redis trouble never becomes a request error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.live.state import SHARED_OUT_REASON, STATE_NAMES, LiveState

log = logging.getLogger("corral.shared_state")

CHANNEL = "corral:state"
PREFIX = "corral:"
#: Latency samples are batched and sent at most this often.
FLUSH_INTERVAL_S = 0.5
MAX_SAMPLES_PER_FLUSH = 500


def channel_for(url: str) -> str:
    """The pub/sub channel for gateways using this Redis database. Keys live in the URL's
    database index, but pub/sub ignores it: without the index in the channel name, gateways
    kept apart by index (a soak run beside a test suite) would still hear each other."""
    parts = urlsplit(url)
    db = parts.path.strip("/") or (parse_qs(parts.query).get("db") or ["0"])[0]
    return CHANNEL if db in {"", "0"} else f"{CHANNEL}:db{db}"


class SharedState:
    def __init__(self, state: LiveState, url: str) -> None:
        self.state = state
        self.url = url
        self.channel = channel_for(url)
        self.replica = secrets.token_hex(6)
        self.connected = False
        self._client: aioredis.Redis | None = None
        self._outbox: list[dict[str, Any]] = []
        self._samples: list[list[Any]] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.state.listeners.append(self._on_change)
        self.state.sample_listeners.append(self._on_sample)
        self._client = aioredis.from_url(self.url, socket_connect_timeout=1, socket_timeout=2)
        self._tasks = [
            asyncio.create_task(self._subscribe_forever(), name="corral-redis-sub"),
            asyncio.create_task(self._flush_forever(), name="corral-redis-pub"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()

    def _on_change(self, kind: str, key: str, data: dict[str, float]) -> None:
        self._outbox.append({"kind": kind, "key": key, "data": data, "at": time.time()})

    def _on_sample(self, key: str, provider: str, kind: str, ms: float, tokens: int, generation_s: float) -> None:
        if len(self._samples) < MAX_SAMPLES_PER_FLUSH:
            self._samples.append([key, provider, kind, ms, tokens, generation_s])

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            if not self._outbox and not self._samples:
                continue
            changes, self._outbox = self._outbox, []
            samples, self._samples = self._samples, []
            try:
                await self._publish(changes, samples)
            except (RedisError, OSError) as exc:
                self._lost(exc)

    async def _publish(self, changes: list[dict[str, Any]], samples: list[list[Any]]) -> None:
        assert self._client is not None
        pipe = self._client.pipeline(transaction=False)
        for change in changes:
            ttl = self._ttl(change)
            pipe.set(f"{PREFIX}{change['kind']}:{change['key']}", orjson.dumps(change), px=int(ttl * 1000))
        message = {"replica": self.replica, "changes": changes, "samples": samples}
        pipe.publish(self.channel, orjson.dumps(message))
        await pipe.execute()
        self._ok()

    def _ttl(self, change: dict[str, Any]) -> float:
        if change["kind"] == "cooldown":
            return max(float(change["data"]["wait_s"]), 0.001)
        if change["kind"] == "out":
            return max(float(change["data"]["for_s"]), 0.001)
        return max(self.state_cooldown_s() * 4, 1.0)

    def state_cooldown_s(self) -> float:
        breakers = list(self.state.breakers.values())
        return breakers[0].config.cooldown_s if breakers else 30.0

    async def _subscribe_forever(self) -> None:
        backoff = 0.2
        while True:
            try:
                await self._catch_up()
                await self._listen()
            except (RedisError, OSError) as exc:
                self._lost(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            else:
                backoff = 0.2

    async def _catch_up(self) -> None:
        """Adopt breaker and cooldown state that other replicas published before we started."""
        assert self._client is not None
        async for raw_key in self._client.scan_iter(match=f"{PREFIX}*:*", count=200):
            value = await self._client.get(raw_key)
            if value:
                self._apply(orjson.loads(value))
        self._ok()

    async def _listen(self) -> None:
        assert self._client is not None
        async with self._client.pubsub() as pubsub:
            await pubsub.subscribe(self.channel)
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                payload = orjson.loads(message["data"])
                if payload.get("replica") == self.replica:
                    continue
                for change in payload.get("changes", ()):
                    self._apply(change)
                for sample in payload.get("samples", ()):
                    if len(sample) == 6:  # a replica of an older release sends another shape: skip it
                        key, provider, kind, ms, tokens, gen_s = sample
                        self.state.observe(key, provider, kind, ms, tokens, gen_s, share=False)

    def _apply(self, change: dict[str, Any]) -> None:
        kind, key, data = change.get("kind"), change.get("key"), change.get("data") or {}
        age = max(0.0, time.time() - float(change.get("at", time.time())))
        if kind == "cooldown":
            remaining = float(data.get("wait_s", 0)) - age
            if remaining > 0:
                self.state.cool_down(str(key), remaining, share=False)
        elif kind == "out":
            remaining = float(data.get("for_s", 0)) - age
            if remaining > 0:
                self.state.take_out(str(key), SHARED_OUT_REASON, for_s=remaining, share=False)
        elif kind == "breaker":
            name = STATE_NAMES.get(float(data.get("state", 0)), "closed")
            opened_age = float(data.get("age_s", 0)) + age
            self.state.adopt_breaker(str(key), name, time.monotonic() - opened_age)

    def _lost(self, exc: BaseException) -> None:
        if self.connected:
            log.warning("redis unavailable (%s); routing on local state until it returns", type(exc).__name__)
        self.connected = False

    def _ok(self) -> None:
        if not self.connected:
            log.info("shared state connected to redis")
        self.connected = True
