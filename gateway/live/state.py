"""Live routing state fed by dispatch outcomes: breakers, cooldowns, latency statistics,
deployments taken out of rotation. One per process; `gateway.live.shared` mirrors the
parts that matter across replicas through Redis when REDIS_URL is set."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import get_args

from gateway.routing.health import Breaker, BreakerName
from gateway.routing.policy.model import Breaker as BreakerConfig
from gateway.routing.stats import FALLBACK_PRIOR, LatencyStats, Prior
from gateway.routing.types import LiveView, PoolLoad

#: Cooldown applied after a 429 that did not say how long to wait.
DEFAULT_COOLDOWN_S = 5.0
#: Never trust a retry-after longer than this (a misbehaving header must not park a backend for hours).
MAX_COOLDOWN_S = 300.0



def provider_priors() -> dict[str, Prior]:
    """Each provider's own latency prior, as its descriptor states it."""
    from gateway.providers.registry import specs

    return {name: Prior(s.prior_ttft_ms, s.prior_tokens_per_s) for name, s in specs().items()}


Listener = Callable[[str, str, dict[str, float]], None]
SampleListener = Callable[[str, str, float, int, float], None]


@dataclass(slots=True)
class LiveState:
    available: frozenset[str] = frozenset()
    cooldowns: dict[str, float] = field(default_factory=dict)
    out_of_rotation: dict[str, str] = field(default_factory=dict)
    breakers: dict[str, Breaker] = field(default_factory=dict)
    stats: dict[str, LatencyStats] = field(default_factory=dict)
    priors: Mapping[str, Prior] = field(default_factory=provider_priors)
    #: Returns the pool's load per logical model (set by the runtime when a pool exists).
    pool_source: Callable[[], Mapping[str, PoolLoad]] | None = None
    #: Called on breaker and cooldown changes, so they can be shared with other replicas.
    listeners: list[Listener] = field(default_factory=list)
    #: The monotonic clock (the simulator substitutes virtual time).
    clock: Callable[[], float] = time.monotonic
    today: Callable[[], date] = date.today
    _today: date = field(default_factory=date.today)
    _today_until: float = float("-inf")
    #: Called with every latency sample we observe ourselves.
    sample_listeners: list[SampleListener] = field(default_factory=list)

    def view(self) -> LiveView:
        now = self.clock()
        if now >= self._today_until:
            self._today = self.today()
            self._today_until = now + 1.0
        return LiveView(
            now=now,
            today=self._today,
            available=self.available,
            cooldowns=self.cooldowns,
            out_of_rotation=self.out_of_rotation,
            breakers=self.breakers,
            stats=self.stats,
            pool=self.pool_source() if self.pool_source else None,
            priors=self.priors,
        )

    def breaker(self, key: str, config: BreakerConfig) -> Breaker:
        found = self.breakers.get(key)
        if found is None or (found.config is not config and found.config != config):
            found = self.breakers[key] = Breaker(config) if found is None else _reconfigured(found, config)
        return found

    def record_health(self, key: str, config: BreakerConfig, ok: bool) -> None:
        breaker = self.breaker(key, config)
        before = breaker.state
        now = self.clock()
        breaker.record(ok, now)
        if breaker.state != before:
            self._emit("breaker", key, {"state": _STATES[breaker.state], "age_s": now - breaker.opened_at})

    def observe_latency(
        self, key: str, provider: str, ttft_ms: float, tokens: int, generation_s: float, *, share: bool = True
    ) -> None:
        if share:
            for listener in self.sample_listeners:
                listener(key, provider, ttft_ms, tokens, generation_s)
        stats = self.stats.get(key)
        if stats is None:
            prior = self.priors.get(provider) or FALLBACK_PRIOR
            stats = self.stats[key] = LatencyStats(prior)
        stats.observe(ttft_ms, tokens, generation_s, self.clock())

    def cool_down(self, key: str, retry_after: float | None, *, share: bool = True) -> None:
        wait = DEFAULT_COOLDOWN_S if retry_after is None else min(max(retry_after, 0.0), MAX_COOLDOWN_S)
        self.cooldowns[key] = self.clock() + wait
        if share:
            self._emit("cooldown", key, {"wait_s": wait})

    def adopt_breaker(self, key: str, state: str, opened_at: float) -> None:
        """Take on a breaker state another replica reported (no event is re-emitted)."""
        breaker = self.breakers.get(key)
        if breaker is None:
            breaker = self.breakers[key] = Breaker(self._breaker_config())
        for name in get_args(BreakerName):
            if name == state:
                breaker.force(name, opened_at)

    def _breaker_config(self) -> BreakerConfig:
        existing = next(iter(self.breakers.values()), None)
        return existing.config if existing else BreakerConfig()

    def take_out(self, key: str, reason: str) -> None:
        self.out_of_rotation[key] = reason

    def _emit(self, kind: str, key: str, data: dict[str, float]) -> None:
        for listener in self.listeners:
            listener(kind, key, data)


_STATES = {"closed": 0.0, "open": 1.0, "half_open": 2.0}
STATE_NAMES = {v: k for k, v in _STATES.items()}


def _reconfigured(old: Breaker, config: BreakerConfig) -> Breaker:
    fresh = Breaker(config)
    fresh.force(old.state, old.opened_at)
    return fresh
