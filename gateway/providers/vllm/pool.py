"""The self-hosted vLLM pool: replica discovery, health, load, and the choice of replica.

Every `health_interval_s` each replica is asked `GET /health` (200: healthy; 503, any
other status, a timeout or a refused connection: unhealthy) and, when healthy,
`GET /v1/models` (served model ids and `max_model_len`). Every `metrics_interval_s`
its `/metrics` page gives running / waiting requests, KV-cache usage and the
prefix-cache hit rate. Both loops are tasks made in `start()` and cancelled in
`close()`; one replica's failure never stops them.

Choosing a replica for a request: the healthy replicas serving the model, least loaded
first, where load is the last scrape's running + waiting corrected for our own
requests started or finished since that scrape (the in-flight count then and now), so
the choice stays right between scrapes; ties go round-robin. For the router, a replica
never scraped, or last scraped more than `STALE_SCRAPES` intervals ago, has an unknown
load (not an empty one). A request that cannot
connect takes its replica out of rotation until its next good health check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson

from gateway.providers.base import ReplicaState
from gateway.providers.errors import ErrorKind, UpstreamError
from gateway.providers.vllm.metrics import LoadSample, hit_rate, parse_metrics

__all__ = ["Replica", "ReplicaState", "VllmPool"]

log = logging.getLogger(__name__)
PROVIDER = "vllm"


#: A replica's load is "unknown" once its last good scrape is this many intervals old.
STALE_SCRAPES = 3
#: How many more requests than the least-loaded replica a conversation's home replica may carry.
AFFINITY_SLACK = 4


class Replica:
    """Mutable live state of one replica; only the pool writes it."""

    __slots__ = (
        "auth_failed",
        "chat_url",
        "healthy",
        "hit_rate",
        "inflight",
        "inflight_at_scrape",
        "last_ok_at",
        "max_model_len",
        "models",
        "sample",
        "scraped_at",
        "url",
    )

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.chat_url = f"{self.url}/v1/chat/completions"
        self.healthy = False
        #: Served model id -> max_model_len, from the last good `/v1/models` (empty: never read).
        self.models: dict[str, int | None] = {}
        #: `/v1/models` refused our API key (401/403) at the last health check.
        self.auth_failed = False
        self.max_model_len: int | None = None
        self.sample = LoadSample()
        self.hit_rate: float | None = None
        self.last_ok_at: float | None = None
        self.inflight = 0
        self.inflight_at_scrape = 0
        #: Clock time of the last good `/metrics` scrape (None: never).
        self.scraped_at: float | None = None

    def load(self) -> int:
        """Requests on the replica now, as best we know (see the module docstring)."""
        others = self.sample.running + self.sample.waiting - self.inflight_at_scrape
        return max(others, 0) + self.inflight

    def queued(self) -> int:
        """Waiting requests now: the last scrape's, plus ours started since then when the
        replica was already queueing (when it was not, they most likely run)."""
        since = self.inflight - self.inflight_at_scrape
        return max(self.sample.waiting + (since if self.sample.waiting > 0 else 0), 0)

    def state(self, now: float | None = None, stale_after_s: float = float("inf")) -> ReplicaState:
        known = self.scraped_at is not None and (now is None or now - self.scraped_at <= stale_after_s)
        return ReplicaState(
            url=self.url,
            healthy=self.healthy,
            models=tuple(self.models),
            max_model_len=self.max_model_len,
            running=self.sample.running,
            waiting=self.sample.waiting,
            kv_cache_usage=self.sample.kv_cache_usage or 0.0,
            prefix_hit_rate=self.hit_rate,
            last_ok_at=self.last_ok_at,
            inflight=self.inflight,
            load_known=known,
            queued=self.queued() if known else 0,
        )


class VllmPool:
    """The replicas behind one `VllmProvider`, probed on the provider's HTTP session."""

    def __init__(
        self,
        urls: list[str],
        *,
        health_interval_s: float,
        metrics_interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.replicas = tuple(Replica(url) for url in dict.fromkeys(urls))
        self.health_interval_s = health_interval_s
        self.metrics_interval_s = metrics_interval_s
        self._probe_timeout = aiohttp.ClientTimeout(total=max(min(health_interval_s, 5.0), 1.0))
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._turn = 0

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, session: aiohttp.ClientSession) -> None:
        """Probe every replica once, then keep probing in the background."""
        self._session = session
        await self.check_all()
        await self.scrape_all()
        self._tasks = [
            asyncio.create_task(self._every(self.health_interval_s, self.check_all), name="vllm-health"),
            asyncio.create_task(self._every(self.metrics_interval_s, self.scrape_all), name="vllm-metrics"),
        ]

    async def close(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._session = None

    async def _every(self, interval: float, job: Callable[[], Any]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await job()
            except Exception:  # a probe bug must not end the loop
                log.exception("vLLM pool: background %s failed", getattr(job, "__name__", "job"))

    # -- probes --------------------------------------------------------------------------------

    async def check_all(self) -> None:
        await asyncio.gather(*(self.check(replica) for replica in self.replicas))

    async def scrape_all(self) -> None:
        await asyncio.gather(*(self.scrape(replica) for replica in self.replicas))

    async def _get(self, url: str) -> tuple[int, bytes]:
        assert self._session is not None, "pool used before start()"
        async with self._session.get(url, timeout=self._probe_timeout, allow_redirects=False) as response:
            return response.status, await response.read()

    async def check(self, replica: Replica) -> None:
        """`/health`, then `/v1/models` when healthy."""
        try:
            status, _ = await self._get(f"{replica.url}/health")
        except (TimeoutError, aiohttp.ClientError) as exc:
            self._set_health(replica, False, f"{type(exc).__name__}")
            return
        if status != 200:
            self._set_health(replica, False, f"/health answered {status}")
            return
        try:
            status, body = await self._get(f"{replica.url}/v1/models")
            replica.auth_failed = status in (401, 403)
            if status == 200:
                self._set_models(replica, orjson.loads(body))
            else:
                log.warning("vLLM replica %s: /v1/models answered %s", replica.url, status)
        except (TimeoutError, aiohttp.ClientError, orjson.JSONDecodeError, ValueError) as exc:
            log.warning("vLLM replica %s: cannot read /v1/models: %s", replica.url, type(exc).__name__)
        self._set_health(replica, True, "ok")
        replica.last_ok_at = self._clock()

    def _set_health(self, replica: Replica, healthy: bool, why: str) -> None:
        if replica.healthy != healthy:
            log.info("vLLM replica %s is now %s (%s)", replica.url, "healthy" if healthy else "unhealthy", why)
        replica.healthy = healthy

    @staticmethod
    def _set_models(replica: Replica, payload: Any) -> None:
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list):
            raise ValueError("/v1/models: no data list")
        models: dict[str, int | None] = {}
        for card in data:
            if isinstance(card, dict) and isinstance(card.get("id"), str):
                length = card.get("max_model_len")
                models[card["id"]] = length if isinstance(length, int) else None
        replica.models = models
        lengths = [n for n in models.values() if n is not None]
        replica.max_model_len = min(lengths) if lengths else None

    async def scrape(self, replica: Replica) -> None:
        """`/metrics` -> load numbers; a failed scrape keeps the last ones."""
        inflight = replica.inflight
        try:
            status, body = await self._get(f"{replica.url}/metrics")
            if status != 200:
                raise ValueError(f"/metrics answered {status}")
            sample = parse_metrics(body.decode("utf-8", "replace"))
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            log.debug("vLLM replica %s: metrics scrape failed: %s", replica.url, exc)
            return
        rate = hit_rate(replica.sample, sample)
        if rate is not None:
            replica.hit_rate = rate
        replica.sample = sample
        replica.inflight_at_scrape = min(inflight, replica.inflight)
        replica.scraped_at = self._clock()

    # -- choice --------------------------------------------------------------------------------

    def acquire(self, model_id: str, affinity: str | None = None) -> Replica:
        """A healthy replica serving `model_id`, counted as one more in flight.

        With an `affinity` key (the conversation's prefix), the replica that key hashes to
        (rendezvous hashing, stable as replicas come and go) is chosen so vLLM's prefix
        cache is reused — unless it carries `AFFINITY_SLACK` more requests than the
        least-loaded one, when load wins. Without a key: the least-loaded replica.
        """
        eligible = [r for r in self.replicas if r.healthy and model_id in r.models]
        if not eligible:
            raise self._none_available(model_id)
        start = self._turn
        self._turn = (start + 1) % len(self.replicas)
        rotated = eligible[start % len(eligible) :] + eligible[: start % len(eligible)]
        best = min(rotated, key=lambda r: (r.load(), r.sample.kv_cache_usage or 0.0))
        if affinity is not None:
            home = max(eligible, key=lambda r: zlib.crc32(f"{affinity}|{r.url}".encode()))
            if home.load() <= best.load() + AFFINITY_SLACK:
                best = home
        best.inflight += 1
        return best

    def release(self, replica: Replica) -> None:
        replica.inflight = max(replica.inflight - 1, 0)

    def mark_unhealthy(self, replica: Replica, why: str) -> None:
        """Out of rotation until the next good health check."""
        self._set_health(replica, False, why)

    def _none_available(self, model_id: str) -> UpstreamError:
        """Why no replica can take a request for `model_id`, as the most useful error."""
        healthy = [r for r in self.replicas if r.healthy]
        if any(r.auth_failed for r in healthy):
            kind, code = ErrorKind.AUTH, "invalid_api_key"
            why = "a replica refused our API key on /v1/models"
        elif healthy and all(r.models for r in healthy) and not any(model_id in r.models for r in self.replicas):
            kind, code = ErrorKind.MODEL_GONE, "model_not_found"
            why = f"no replica serves {model_id!r}"
        else:
            kind, code = ErrorKind.CONNECTION, "no_healthy_replica"
            why = f"no healthy replica serves {model_id!r} ({len(healthy)}/{len(self.replicas)} healthy)"
        return UpstreamError(kind, f"vllm: {why}", provider=PROVIDER, code=code)

    def max_model_len(self, model_id: str) -> int | None:
        """The largest context any healthy replica offers for `model_id` (None: unknown)."""
        lengths = [r.models.get(model_id) for r in self.replicas if r.healthy]
        known = [n for n in lengths if n is not None]
        return max(known) if known else None

    def state(self) -> tuple[ReplicaState, ...]:
        """Each replica's snapshot; its load counts as known for `STALE_SCRAPES` scrape intervals."""
        now, stale = self._clock(), STALE_SCRAPES * self.metrics_interval_s
        return tuple(replica.state(now, stale) for replica in self.replicas)
