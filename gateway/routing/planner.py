"""Turn a request into an ordered plan of deployments, with the reason and the figures
behind every candidate kept or dropped. Pure: everything it needs is passed in
(including the clock reading and the random draw for weighted splits).
"""

from __future__ import annotations

from decimal import Decimal

from gateway.catalogue.deployments import Deployment
from gateway.catalogue.prices import PriceBook
from gateway.routing.policy.model import DEFAULT_POLICY, Policy, RouteSettings, Rule
from gateway.routing.scoring import effective_objective, figures_for, order_candidates
from gateway.routing.types import Candidate, Dropped, LiveView, Plan, Refusal
from gateway.schema.chat import ChatRequest

#: Output length assumed for estimates when the request sets no max_tokens.
DEFAULT_EXPECTED_OUTPUT = 256




def _static_reason(req: ChatRequest, dep: Deployment, view: LiveView, settings: RouteSettings) -> str | None:
    """Reasons that do not depend on live health."""
    if dep.provider not in view.available:
        return "provider not configured"
    if dep.retired_on(view.today):
        return dep.retired_reason
    gone = view.out_of_rotation.get(dep.key)
    if gone:
        return f"out of rotation: {gone}"
    if settings.allow is not None and dep.provider not in settings.allow:
        return "not allowed by policy"
    if dep.provider in settings.deny:
        return "denied by policy"
    prefs = req.prefs.providers
    if prefs is not None and prefs.only is not None and dep.provider not in prefs.only:
        return "not in request's providers.only"
    if prefs is not None and prefs.ignore is not None and dep.provider in prefs.ignore:
        return "in request's providers.ignore"
    missing = req.features - dep.capabilities
    if missing:
        return "does not support " + ", ".join(sorted(missing))
    if req.max_output_tokens is not None and req.max_output_tokens > dep.max_output_tokens:
        return f"max output {dep.max_output_tokens} < requested {req.max_output_tokens}"
    needed = req.prompt_tokens_estimate + (req.max_output_tokens or 0)
    if needed > dep.context_window:
        return f"context window {dep.context_window} < about {needed} tokens needed"
    return None


def _live_reason(dep: Deployment, view: LiveView, settings: RouteSettings) -> Dropped | None:
    breaker = view.breakers.get(dep.key) if view.breakers else None
    if breaker is not None and not breaker.would_allow(view.now):
        return Dropped(dep, f"circuit breaker open (retry in {breaker.retry_in(view.now):.1f}s)")
    until = view.cooldowns.get(dep.key)
    if until is not None and until > view.now:
        return Dropped(dep, "cooling down after rate limiting", retry_after_s=until - view.now)
    if dep.pooled and view.pool is not None:
        load = view.pool.get(dep.model)
        spill = settings.pool
        if load is not None and load.healthy_replicas == 0:
            return Dropped(dep, "no healthy pool replica serves this model")
        if load is not None and load.queue_depth >= spill.max_queue_depth:
            return Dropped(dep, f"pool full: queue depth {load.queue_depth} >= {spill.max_queue_depth}; spilling over")
        if load is not None and load.kv_cache_usage >= spill.max_kv_cache_usage:
            return Dropped(
                dep, f"pool full: KV cache {load.kv_cache_usage:.0%} >= {spill.max_kv_cache_usage:.0%}; spilling over"
            )
    return None


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
    for dep in deployments:
        reason = _static_reason(req, dep, view, settings) or refuse(req, dep)
        if reason:
            dropped.append(Dropped(dep, reason))
            continue
        live = _live_reason(dep, view, settings)
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
    ordered = order_candidates(kept, req, settings, objective, rng)
    if len(ordered) > 1 and (req.prefs.allow_fallbacks is False or not settings.fallback):
        why = "fallbacks disabled by request" if req.prefs.allow_fallbacks is False else "fallback disabled by policy"
        dropped.extend(Dropped(c.deployment, why) for c in ordered[1:])
        ordered = ordered[:1]
    return Plan(req.model, tuple(ordered), tuple(dropped), rule_name, settings)
