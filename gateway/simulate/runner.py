"""Replay a trace through the real `Dispatcher` (router, breakers, cooldowns, retries)
against simulated backends in virtual time, and summarise what each policy did."""

from __future__ import annotations

import random
import statistics
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from gateway.catalogue.deployments import Catalogue, Deployment
from gateway.catalogue.prices import PriceBook
from gateway.dispatch.loop import Dispatcher
from gateway.errors import GatewayError
from gateway.live.state import LiveState
from gateway.routing.policy.model import Policy
from gateway.routing.types import PoolLoad
from gateway.schema.chat import ChatRequest, CorralPrefs
from gateway.simulate.backend import Clock, SimBackend
from gateway.simulate.scenario import Scenario, TraceRequest


@dataclass
class PolicyResult:
    policy: str
    requests: int = 0
    lost: int = 0
    spend: Decimal = Decimal(0)
    oracle_spend: Decimal = Decimal(0)
    slo_met: int = 0
    extra_attempts: int = 0
    served: Counter[str] = field(default_factory=Counter)
    ttfts_ms: list[float] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    lost_in_incidents: int = 0

    def percentile(self, values: list[float], q: int) -> float:
        if len(values) < 2:
            return values[0] if values else 0.0
        return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _request(tr: TraceRequest, catalogue: Catalogue, index: int) -> ChatRequest:
    logical = catalogue.resolve(tr.model)
    if logical is None:
        raise ValueError(f"trace line {index}: unknown model {tr.model!r}")
    return ChatRequest(
        body={"model": logical.name, "messages": [{"role": "user", "content": "(simulated)"}]},
        model=logical.name,
        stream=False,
        include_usage=False,
        features=tr.features,
        prompt_tokens_estimate=tr.prompt_tokens,
        max_output_tokens=tr.max_tokens,
        prefs=CorralPrefs(tags=dict(tr.tags) or None),
        request_id=f"sim-{index}",
    )


def _pool_source(backends: dict[str, SimBackend], clock: Clock, catalogue: Catalogue) -> dict[str, PoolLoad]:
    pool = next((b for b in backends.values() if b.pooled), None)
    if pool is None:
        return {}
    running, waiting = pool.queue_depth(clock.now + clock.spent_s)
    capacity = pool.profile.max_num_seqs * pool.profile.replicas
    #: A full batch is modelled as 90% of the KV cache.
    load = PoolLoad(pool.profile.replicas, waiting, running, 0.9 * running / capacity)
    return dict.fromkeys(catalogue.models, load)


def _pool_has_room(load: PoolLoad | None, policy: Policy) -> bool:
    """Whether the pool could take a request now under the policy's own spill thresholds:
    the oracle is judged on the same pool occupancy as the policy, not a bigger pool."""
    spill = policy.defaults.pool
    return (
        load is not None and load.queue_depth < spill.max_queue_depth and load.kv_cache_usage < spill.max_kv_cache_usage
    )


def oracle_cost(
    tr: TraceRequest,
    req: ChatRequest,
    deployments: tuple[Deployment, ...],
    scenario: Scenario,
    prices: PriceBook,
    pool_has_room: bool,
) -> Decimal | None:
    """The cheapest spend that meets the SLO for this request, knowing every outage in
    advance (the pool counts only while it has room at that moment)."""
    options: list[tuple[bool, Decimal, float]] = []
    for dep in deployments:
        if dep.pooled and not pool_has_room:
            continue
        profile = scenario.profiles.get(dep.provider)
        price = prices.at(dep.provider, dep.model, scenario.today)
        if profile is None or price is None or dep.retired_on(scenario.today):
            continue
        if not req.features <= dep.capabilities or tr.prompt_tokens + tr.max_tokens > dep.context_window:
            continue
        if profile.incident_at(tr.t) is not None:
            continue
        meets = scenario.slo_ttft_ms is None or profile.ttft_ms <= scenario.slo_ttft_ms
        options.append((meets, price.estimate(tr.prompt_tokens, tr.output_tokens), profile.ttft_ms))
    meeting = [cost for meets, cost, _ in options if meets]
    if meeting:
        return min(meeting)
    return min(options, key=lambda o: o[2])[1] if options else None


async def simulate(
    policy: Policy, scenario: Scenario, trace: list[TraceRequest], catalogue: Catalogue, prices: PriceBook
) -> PolicyResult:
    clock = Clock()
    rng = random.Random(scenario.seed)
    backends = {
        name: SimBackend(name, profile, clock, rng, pooled=name in catalogue.pooled)
        for name, profile in scenario.profiles.items()
    }
    state = LiveState(clock=lambda: clock.now + clock.spent_s, today=lambda: scenario.today)
    state.pool_source = lambda: _pool_source(backends, clock, catalogue)

    async def virtual_sleep(seconds: float) -> None:
        clock.spent_s += seconds

    dispatcher = Dispatcher(backends, catalogue, prices, state, lambda: policy, virtual_sleep, rng.random)
    result = PolicyResult(policy.name)
    for index, tr in enumerate(trace):
        clock.now, clock.spent_s = tr.t, 0.0
        for backend in backends.values():
            backend.output_tokens = tr.output_tokens
        req = _request(tr, catalogue, index)
        result.requests += 1
        room = _pool_has_room(_pool_source(backends, clock, catalogue).get(req.model), policy)
        oracle = oracle_cost(tr, req, catalogue.deployments(req.model), scenario, prices, room)
        result.oracle_spend += oracle or Decimal(0)
        try:
            completion, outcome = await dispatcher.complete(req)
        except GatewayError:
            result.lost += 1
            if any(p.incident_at(tr.t) for p in scenario.profiles.values()):
                result.lost_in_incidents += 1
            continue
        dep = outcome.deployment
        ttft_ms = (clock.spent_s + backends[dep.provider].last_ttft_s) * 1000
        timing = completion.reported_timing_s or (0.0, 0.0)
        result.ttfts_ms.append(ttft_ms)
        result.latencies_ms.append(ttft_ms + timing[1] * 1000)
        result.slo_met += scenario.slo_ttft_ms is None or ttft_ms <= scenario.slo_ttft_ms
        result.spend += dispatcher.cost(dep, completion.usage, scenario.today)
        result.served[dep.provider] += 1
        result.extra_attempts += len(outcome.attempts) - 1
    return result
