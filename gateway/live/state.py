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
from gateway.routing.hedge import HedgeSpend, rule_key
from gateway.routing.policy.model import Breaker as BreakerConfig
from gateway.routing.stats import FALLBACK_PRIOR, LatencyStats, Prior
from gateway.routing.types import LiveView, PoolLoad

#: Cooldown applied after a 429 that did not say how long to wait.
DEFAULT_COOLDOWN_S = 5.0
#: Never trust a retry-after longer than this (a misbehaving header must not park a backend for hours).
MAX_COOLDOWN_S = 300.0
#: How long a deployment that refused a feature is not offered requests using it.
CAPABILITY_MISS_S = 3600.0
#: How long a deployment whose model is gone stays out of rotation; after that the next
#: request re-probes it (and takes it out again if the model is still gone).
MODEL_GONE_S = 300.0
#: Why a deployment is out when another replica took it out (the reason itself stays there).
SHARED_OUT_REASON = "another gateway replica was told the model is gone"


def provider_priors() -> dict[str, Prior]:
    """Each provider's own latency prior, as its descriptor states it."""
    from gateway.providers.registry import specs

    return {name: Prior(s.prior_ttft_ms, s.prior_tokens_per_s) for name, s in specs().items()}


Listener = Callable[[str, str, dict[str, float]], None]
#: (deployment key, provider, kind, ms, output tokens, generation s): kind "split" carries a
#: measured TTFT in ms and the generation time; "total" a whole answer's time in ms (and 0).
SampleListener = Callable[[str, str, str, float, int, float], None]


@dataclass(slots=True)
class LiveState:
    available: frozenset[str] = frozenset()
    cooldowns: dict[str, float] = field(default_factory=dict)
    out_of_rotation: dict[str, str] = field(default_factory=dict)
    #: deployment key -> feature -> monotonic time until which the deployment is not offered it.
    capability_misses: dict[str, dict[str, float]] = field(default_factory=dict)
    #: deployment key -> clock time at which it comes back into rotation (to be re-probed).
    out_until: dict[str, float] = field(default_factory=dict)
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
    #: rule -> its rolling spend and what hedging added (the hedge cost cap; this process only).
    hedge_spend: dict[str, HedgeSpend] = field(default_factory=dict)

    def view(self) -> LiveView:
        now = self.clock()
        if self.out_until:
            self._bring_back(now)
        if now >= self._today_until:
            self._today = self.today()
            self._today_until = now + 1.0
        return LiveView(
            now=now,
            today=self._today,
            available=self.available,
            cooldowns=self.cooldowns,
            out_of_rotation=self.out_of_rotation,
            capability_misses=self.capability_misses,
            breakers=self.breakers,
            stats=self.stats,
            pool=self.pool_source() if self.pool_source else None,
            priors=self.priors,
            hedge_spend=self.hedge_spend,
        )

    def spent(self, rule: str | None, total_usd: float, extra_usd: float) -> None:
        """A request under `rule` cost `total_usd` in all, `extra_usd` of it for attempts that
        lost a hedge race (the cap `hedge.max_extra_cost_pct` is judged on these)."""
        key = rule_key(rule)
        spend = self.hedge_spend.get(key)
        if spend is None:
            spend = self.hedge_spend[key] = HedgeSpend(updated_at=self.clock())
        spend.add(total_usd, extra_usd, self.clock())

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
        """An answer whose TTFT and generation time were measured apart (stream, server timings)."""
        self.observe(key, provider, "split", ttft_ms, tokens, generation_s, share=share)

    def observe_total(self, key: str, provider: str, total_ms: float, tokens: int, *, share: bool = True) -> None:
        """A whole answer of which only the total time is known (non-streamed, no server timings)."""
        self.observe(key, provider, "total", total_ms, tokens, 0.0, share=share)

    def observe(
        self, key: str, provider: str, kind: str, ms: float, tokens: int, generation_s: float, *, share: bool = True
    ) -> None:
        if kind not in ("split", "total"):
            return
        if share:
            for listener in self.sample_listeners:
                listener(key, provider, kind, ms, tokens, generation_s)
        stats = self.stats.get(key)
        if stats is None:
            prior = self.priors.get(provider) or FALLBACK_PRIOR
            stats = self.stats[key] = LatencyStats(prior)
        if kind == "split":
            stats.observe_split(ms, tokens, generation_s, self.clock())
        else:
            stats.observe_total(ms, tokens, self.clock())

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

    def take_out(self, key: str, reason: str, *, for_s: float = MODEL_GONE_S, share: bool = True) -> None:
        """Out of rotation for `for_s` seconds (bounded: the next request after re-probes it)."""
        self.out_of_rotation[key] = reason
        self.out_until[key] = self.clock() + for_s
        if share:
            self._emit("out", key, {"for_s": for_s})

    def _bring_back(self, now: float) -> None:
        for key in [k for k, until in self.out_until.items() if until <= now]:
            del self.out_until[key]
            self.out_of_rotation.pop(key, None)

    def capability_miss(self, key: str, feature: str) -> None:
        """The deployment refused `feature`: offer it no request using it for a while (one
        entry per deployment and catalogue capability, so the map stays small)."""
        self.capability_misses.setdefault(key, {})[feature] = self.clock() + CAPABILITY_MISS_S

    def _emit(self, kind: str, key: str, data: dict[str, float]) -> None:
        for listener in self.listeners:
            listener(kind, key, data)


_STATES = {"closed": 0.0, "open": 1.0, "half_open": 2.0}
STATE_NAMES = {v: k for k, v in _STATES.items()}


def _reconfigured(old: Breaker, config: BreakerConfig) -> Breaker:
    fresh = Breaker(config)
    fresh.force(old.state, old.opened_at)
    return fresh
