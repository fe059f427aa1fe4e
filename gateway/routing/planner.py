"""Turn a request into an ordered plan of deployments, with the reason and the figures
behind every candidate kept or dropped. Pure: everything it needs is passed in
(including the clock reading and the random draw for weighted splits).
"""

from __future__ import annotations

from decimal import Decimal

from gateway.catalogue.deployments import Deployment
from gateway.catalogue.prices import PriceBook
from gateway.routing.hedge import decide, rule_key
from gateway.routing.policy.model import DEFAULT_POLICY, Policy, PoolSpill, RouteSettings, Rule
from gateway.routing.scoring import effective_objective, figures_for, order_candidates
from gateway.routing.types import BREAKER_OPEN, NOT_CONFIGURED, Candidate, Dropped, LiveView, Plan, PoolLoad, Refusal
from gateway.schema.chat import ChatRequest

#: Output length assumed for estimates when the request sets no max_tokens.
DEFAULT_EXPECTED_OUTPUT = 256


#: The request parameter that asks for each catalogue capability.
FEATURE_PARAMS = {
    "tool_choice": "tool_choice",
    "stream_tools": "stream",
    "images": "messages",
    "json_object": "response_format",
    "json_schema": "response_format",
    "logprobs": "logprobs",
    "tools": "tools",
    "stream": "stream",
}


#: Per model's deployment tuple and set of configured providers: for each deployment, its
#: `Dropped(dep, NOT_CONFIGURED)` or None, made once. Most catalogue rows of a gateway with
#: a few providers configured are dropped for this on every request, and a per-request
#: check per row was a third of the planner's time.
_unconfigured: dict[tuple[int, frozenset[str]], tuple[tuple[Deployment, ...], tuple[Dropped | None, ...]]] = {}


def _not_configured(deployments: tuple[Deployment, ...], available: frozenset[str]) -> tuple[Dropped | None, ...]:
    key = (id(deployments), available)
    found = _unconfigured.get(key)
    if found is None or found[0] is not deployments:
        if len(_unconfigured) > 4096:  # catalogue reloads leave old tuples behind
            _unconfigured.clear()
        drops = tuple(None if dep.provider in available else Dropped(dep, NOT_CONFIGURED) for dep in deployments)
        found = _unconfigured[key] = (deployments, drops)
    return found[1]


def _static_drop(req: ChatRequest, dep: Deployment, view: LiveView, settings: RouteSettings) -> Dropped | None:
    """Reasons that do not depend on live health (for a deployment whose provider is configured)."""
    if dep.retired_on(view.today):
        return Dropped(dep, dep.retired_reason)
    gone = view.out_of_rotation.get(dep.key)
    if gone:
        return Dropped(dep, f"out of rotation: {gone}", live=True)
    if settings.allow is not None and dep.provider not in settings.allow:
        return Dropped(dep, "not allowed by policy", by_policy=True)
    if dep.provider in settings.deny:
        return Dropped(dep, "denied by policy", by_policy=True)
    prefs = req.prefs.providers
    if prefs is not None and prefs.only is not None and dep.provider not in prefs.only:
        return Dropped(dep, "not in request's providers.only", param="corral.providers.only")
    if prefs is not None and prefs.ignore is not None and dep.provider in prefs.ignore:
        return Dropped(dep, "in request's providers.ignore", param="corral.providers.ignore")
    missing = sorted(req.features - dep.capabilities)
    if missing:
        return Dropped(dep, "does not support " + ", ".join(missing), param=FEATURE_PARAMS.get(missing[0], missing[0]))
    if req.max_output_tokens is not None and req.max_output_tokens > dep.max_output_tokens:
        reason = f"max output {dep.max_output_tokens} < requested {req.max_output_tokens}"
        return Dropped(dep, reason, param="max_tokens")
    needed = req.prompt_tokens_estimate + (req.max_output_tokens or 0)
    if needed > dep.context_window:
        return Dropped(dep, f"context window {dep.context_window} < about {needed} tokens needed", param="messages")
    return None


def _live_reason(req: ChatRequest, dep: Deployment, view: LiveView, settings: RouteSettings) -> Dropped | None:
    breaker = view.breakers.get(dep.key) if view.breakers else None
    if breaker is not None and not breaker.would_allow(view.now):
        return Dropped(dep, f"{BREAKER_OPEN} (retry in {breaker.retry_in(view.now):.1f}s)", live=True)
    refused = _refused(req, dep, view)
    if refused:
        return Dropped(dep, refused[0], param=FEATURE_PARAMS.get(refused[1], refused[1]))
    until = view.cooldowns.get(dep.key)
    if until is not None and until > view.now:
        return Dropped(dep, "cooling down after rate limiting", retry_after_s=until - view.now, live=True)
    if dep.pooled and view.pool is not None:
        load = view.pool.get(dep.model)
        spill = settings.pool
        if load is not None and load.healthy_replicas == 0:
            return Dropped(dep, "no healthy pool replica serves this model", live=True)
        if load is not None and load.replicas:
            return _pool_room(dep, load, spill)
        if load is not None and load.queue_depth >= spill.max_queue_depth:
            reason = f"pool full: queue depth {load.queue_depth} >= {spill.max_queue_depth}; spilling over"
            return Dropped(dep, reason, live=True)
        if load is not None and load.kv_cache_usage >= spill.max_kv_cache_usage:
            reason = f"pool full: KV cache {load.kv_cache_usage:.0%} >= {spill.max_kv_cache_usage:.0%}; spilling over"
            return Dropped(dep, reason, live=True)
    return None


def _refused(req: ChatRequest, dep: Deployment, view: LiveView) -> tuple[str, str] | None:
    """(why, the first feature refused) when the deployment refused a feature this request uses."""
    learned = view.capability_misses.get(dep.key) if view.capability_misses else None
    if not learned:
        return None
    refused = sorted(f for f, until in learned.items() if until > view.now and f in req.features)
    if not refused:
        return None
    wait = max(learned[f] for f in refused) - view.now
    return f"{dep.provider} refused {', '.join(refused)} as unsupported (offered again in {wait:.0f}s)", refused[0]


def _pool_room(dep: Deployment, load: PoolLoad, spill: PoolSpill) -> Dropped | None:
    """Replica by replica: the pool takes the request if one replica with a known load has
    room (queue below the bound, KV cache below the bound). A replica whose load is unknown
    (never scraped, or stale) is not counted as room: unknown is not empty."""
    known = [r for r in load.replicas if r is not None]
    if any(r.queue_depth < spill.max_queue_depth and r.kv_cache_usage < spill.max_kv_cache_usage for r in known):
        return None
    unknown = len(load.replicas) - len(known)
    if not known:
        reason = f"pool load unknown: no recent scrape of its {unknown} healthy replica(s); spilling over"
        return Dropped(dep, reason, live=True)
    full = f"every replica with a known load is full (queue >= {spill.max_queue_depth} or KV cache >= "
    full += f"{spill.max_kv_cache_usage:.0%})"
    return Dropped(
        dep, f"pool full: {full}" + (f", {unknown} unknown" if unknown else "") + "; spilling over", live=True
    )


def _max_price(req: ChatRequest, settings: RouteSettings) -> Decimal | None:
    limits = [p for p in (settings.max_price_usd, req.prefs.max_price_usd) if p is not None]
    return min(Decimal(str(p)) for p in limits) if limits else None


def plan(
    req: ChatRequest,
    deployments: tuple[Deployment, ...],
    prices: PriceBook,
    view: LiveView,
    refuse: Refusal,
    policy: Policy = DEFAULT_POLICY,
    rng: float = 0.5,
    team: str | None = None,
    key: str | None = None,
) -> Plan:
    tags = req.prefs.tags or {}
    rule: Rule | None = policy.rule_for(
        req.model, team or tags.get("team"), key, tags, req.features, req.prompt_tokens_estimate
    )
    settings = rule.settings if rule else policy.defaults
    rule_name = rule.name if rule else None
    if rule is not None and rule.reject:
        return Plan(req.model, (), (), rule_name, settings, rejected=rule.reject)
    output = req.max_output_tokens or DEFAULT_EXPECTED_OUTPUT
    max_price = _max_price(req, settings)
    priors = view.priors or {}
    objective = effective_objective(req, settings)
    kept: list[Candidate] = []
    dropped: list[Dropped] = []
    for dep, not_configured in zip(deployments, _not_configured(deployments, view.available), strict=True):
        if not_configured is not None:
            dropped.append(not_configured)
            continue
        drop = _static_drop(req, dep, view, settings)
        if drop is None and (refusal := refuse(req, dep)):
            drop = Dropped(dep, refusal)
        if drop is not None:
            dropped.append(drop)
            continue
        live = _live_reason(req, dep, view, settings)
        if live is not None:
            dropped.append(live)
            continue
        price = prices.at(dep.provider, dep.model, view.today)
        if price is None:
            dropped.append(Dropped(dep, "no price in the price book"))
            continue
        cost = price.estimate(req.prompt_tokens_estimate, output)
        if max_price is not None and cost > max_price:
            dropped.append(Dropped(dep, f"expected cost {cost:.6f} USD above max price {max_price} USD"))
            continue
        stats = view.stats.get(dep.key) if view.stats else None
        figures = figures_for(dep, cost, output, stats, priors, view, settings, objective)
        kept.append(Candidate(dep, cost, figures))
    ordered, split_choice = order_candidates(kept, req, settings, objective, rng)
    if len(ordered) > 1 and (req.prefs.allow_fallbacks is False or not settings.fallback):
        why = "fallbacks disabled by request" if req.prefs.allow_fallbacks is False else "fallback disabled by policy"
        dropped.extend(Dropped(c.deployment, why) for c in ordered[1:])
        ordered = ordered[:1]
    candidates = tuple(ordered)
    spend = view.hedge_spend.get(rule_key(rule_name)) if view.hedge_spend else None
    hedge = decide(
        settings,
        candidates,
        stream=req.stream,
        has_tools="tools" in req.features or req.legacy_functions,
        extra_pct=spend.extra_pct() if spend is not None else 0.0,
    )
    return Plan(
        req.model, candidates, tuple(dropped), rule_name, settings, objective=objective, split=split_choice, hedge=hedge
    )
