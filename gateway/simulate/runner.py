"""Replay a trace through the real `Dispatcher` (router, breakers, cooldowns, retries)
against simulated backends in virtual time, and summarise what each policy did."""

from __future__ import annotations

import random
import statistics
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from gateway.catalogue.deployments import Catalogue, Deployment
from gateway.catalogue.prices import PriceBook
from gateway.dispatch.accounting import billed, hedge_extra
from gateway.dispatch.loop import Dispatcher, Outcome
from gateway.errors import GatewayError
from gateway.live.state import LiveState
from gateway.routing.policy.model import Policy
from gateway.routing.types import PoolLoad
from gateway.schema.chat import ChatRequest, CorralPrefs
from gateway.schema.usage import Usage
from gateway.simulate.backend import Clock, SimBackend
from gateway.simulate.racer import VirtualRacer
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
    #: Requests that met the SLO for less than the hindsight baseline (a bug if ever above 0).
    met_below_oracle: int = 0
    #: Requests whose hedge started, and what the attempts that lost a race were billed
    #: (included in `spend`).
    hedged: int = 0
    hedge_spend: Decimal = Decimal(0)

    def percentile(self, values: list[float], q: float) -> float:
        """The q-th percentile (q may be fractional: 99.9)."""
        if len(values) < 2:
            return values[0] if values else 0.0
        cuts = statistics.quantiles(values, n=1000, method="inclusive")
        return cuts[round(q * 10) - 1]


def _request(tr: TraceRequest, catalogue: Catalogue, index: int) -> ChatRequest:
    logical = catalogue.resolve(tr.model)
    if logical is None:
        raise ValueError(f"trace line {index}: unknown model {tr.model!r}")
    features = set(tr.features)
    if tr.stream:
        features.add("stream")
        if "tools" in features:
            features.add("stream_tools")
    return ChatRequest(
        body={"model": logical.name, "messages": [{"role": "user", "content": "(simulated)"}], "stream": tr.stream},
        model=logical.name,
        stream=tr.stream,
        include_usage=tr.stream,
        features=frozenset(features),
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


def oracle_cost(
    tr: TraceRequest,
    req: ChatRequest,
    deployments: tuple[Deployment, ...],
    scenario: Scenario,
    prices: PriceBook,
    answer_ttft_ms: Mapping[str, float],
    slo_ttft_ms: float | None,
    slo_latency_ms: float | None = None,
) -> Decimal | None:
    """Hindsight: the cheapest deployment whose simulated answer to this very request (its
    drawn TTFT, the pool's queue at that moment) met the SLO, knowing every outage and
    retirement; when none would have, the cheapest that could serve at all. A policy that
    meets the SLO on a request can therefore never spend less on it than this."""
    meeting: list[Decimal] = []
    serving: list[Decimal] = []
    for dep in deployments:
        profile = scenario.profiles.get(dep.provider)
        price = prices.at(dep.provider, dep.model, scenario.today)
        if profile is None or price is None or dep.retired_on(scenario.today):
            continue
        if not req.features <= dep.capabilities or tr.prompt_tokens + tr.max_tokens > dep.context_window:
            continue
        if profile.incident_at(tr.t) is not None:
            continue
        cost = price.estimate(tr.prompt_tokens, tr.output_tokens)
        serving.append(cost)
        ttft = answer_ttft_ms[dep.provider]
        latency = ttft + 1000.0 * tr.output_tokens / profile.tokens_per_s
        if (slo_ttft_ms is None or ttft <= slo_ttft_ms) and (slo_latency_ms is None or latency <= slo_latency_ms):
            meeting.append(cost)
    return min(meeting or serving, default=None)


def named_providers(policy: Policy) -> set[str]:
    """Every provider a policy names (allow, order, split), in its defaults and rules."""
    names: set[str] = set()
    for settings in (policy.defaults, *(r.settings for r in policy.rules)):
        names |= set(settings.allow or ()) | set(settings.order)
        names |= {t.provider for t in settings.split if t.provider is not None}
    return names


async def _whole(dispatcher: Dispatcher, req: ChatRequest) -> tuple[Usage, Outcome]:
    completion, outcome = await dispatcher.complete(req)
    return completion.usage, outcome


async def _streamed(dispatcher: Dispatcher, req: ChatRequest) -> tuple[Usage, Outcome]:
    """Open the stream (failing over like the gateway), read it to its end, and feed the
    latency model the measured TTFT and generation time, as the gateway's relay does."""
    opened = await dispatcher.open_stream(req)
    async for _ in opened.batches:
        pass
    dep = opened.outcome.deployment
    backend = dispatcher.providers[dep.provider]
    assert isinstance(backend, SimBackend)
    usage = opened.stream.usage or Usage(req.prompt_tokens_estimate, backend.output_tokens)
    dispatcher.observe_stream(dep, backend.last_ttft_s * 1000, usage.completion_tokens, backend.last_generation_s)
    return usage, opened.outcome


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

    dispatcher = Dispatcher(
        backends,
        catalogue,
        prices,
        state,
        lambda: policy,
        virtual_sleep,
        rng.random,
        timer=state.clock,
        racer=VirtualRacer(clock),
    )
    result = PolicyResult(policy.name)
    for index, tr in enumerate(trace):
        clock.now, clock.spent_s = tr.t, 0.0
        for backend in backends.values():
            backend.output_tokens = tr.output_tokens
            backend.draw()
        #: What each backend would answer this request in, before the policy's choice loads the pool.
        answers = {name: b.answer_ttft_s(tr.t) * 1000 for name, b in backends.items()}
        req = _request(tr, catalogue, index)
        result.requests += 1
        try:
            usage, outcome = await (_streamed(dispatcher, req) if tr.stream else _whole(dispatcher, req))
        except GatewayError as err:
            state.spent(err.rule, float(billed(err.attempt_records)), float(hedge_extra(err.attempt_records)))
            result.lost += 1
            if any(p.incident_at(tr.t) for p in scenario.profiles.values()):
                result.lost_in_incidents += 1
            continue
        dep = outcome.deployment
        objective = outcome.plan.objective
        slo = objective.max_ttft_ms if objective is not None and objective.max_ttft_ms is not None else None
        slo = scenario.slo_ttft_ms if slo is None else slo
        slo_latency = objective.max_latency_ms if objective is not None else None
        deployments = catalogue.deployments(req.model)
        oracle = oracle_cost(tr, req, deployments, scenario, prices, answers, slo, slo_latency)
        result.oracle_spend += oracle or Decimal(0)
        served_by = backends[dep.provider]
        #: Time on failed attempts and back-offs before the answer, then the answer's own TTFT.
        before_s = clock.spent_s - served_by.last_ttft_s - served_by.last_generation_s
        ttft_ms = (before_s + served_by.last_ttft_s) * 1000
        latency_ms = ttft_ms + served_by.last_generation_s * 1000
        result.ttfts_ms.append(ttft_ms)
        result.latencies_ms.append(latency_ms)
        met = (slo is None or ttft_ms <= slo) and (slo_latency is None or latency_ms <= slo_latency)
        cost = dispatcher.cost(dep, usage, scenario.today)
        result.slo_met += met
        result.met_below_oracle += met and oracle is not None and cost < oracle
        extra = hedge_extra(outcome.attempts)
        state.spent(outcome.plan.rule, float(cost + billed(outcome.attempts)), float(extra))
        result.spend += cost + billed(outcome.attempts)
        result.hedged += outcome.hedge_winner is not None
        result.hedge_spend += extra
        result.served[dep.provider] += 1
        result.extra_attempts += len(outcome.attempts) - 1
    return result
