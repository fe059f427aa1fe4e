"""Turn a request into an ordered plan of deployments, with a reason for every
candidate kept or dropped. Pure: everything it needs is passed in.

This is the simple router of the gateway core (cheapest eligible deployment first,
explicit per-request order honoured). The policy-driven router replaces `plan()`
behind the same inputs and outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from gateway.pricing import PriceBook
from gateway.routing.catalogue import Deployment
from gateway.schema.chat import ChatRequest

#: Output length assumed for cost estimates when the request sets no max_tokens.
DEFAULT_EXPECTED_OUTPUT = 256


@dataclass(frozen=True, slots=True)
class Candidate:
    deployment: Deployment
    expected_cost_usd: Decimal
    reason: str


@dataclass(frozen=True, slots=True)
class Dropped:
    deployment: Deployment
    reason: str
    #: Seconds until the deployment may be tried again, when it is only cooling down.
    retry_after_s: float | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    model: str
    candidates: tuple[Candidate, ...]
    dropped: tuple[Dropped, ...]


@dataclass(frozen=True, slots=True)
class LiveView:
    """What the router needs to know about the world right now (read-only)."""

    now: float
    today: date
    #: Providers this gateway has an adapter for (configured or simulated).
    available: frozenset[str]
    #: deployment key -> monotonic time until which it is cooling down (e.g. after a 429).
    cooldowns: Mapping[str, float]
    #: deployment key -> why it was taken out of rotation (e.g. the provider said the model is gone).
    out_of_rotation: Mapping[str, str]


Refusal = Callable[[ChatRequest, Deployment], str | None]


def _ineligible(req: ChatRequest, dep: Deployment, view: LiveView, refuse: Refusal) -> Dropped | None:
    if dep.provider not in view.available:
        return Dropped(dep, "provider not configured")
    if dep.retired_on(view.today):
        assert dep.retired is not None
        return Dropped(dep, f"retired on {dep.retired.date.isoformat()} ({dep.retired.source})")
    gone = view.out_of_rotation.get(dep.key)
    if gone:
        return Dropped(dep, f"out of rotation: {gone}")
    prefs = req.prefs.providers
    if prefs is not None:
        if prefs.only is not None and dep.provider not in prefs.only:
            return Dropped(dep, "not in request's providers.only")
        if prefs.ignore is not None and dep.provider in prefs.ignore:
            return Dropped(dep, "in request's providers.ignore")
    missing = req.features - dep.capabilities
    if missing:
        return Dropped(dep, "does not support " + ", ".join(sorted(missing)))
    if req.max_output_tokens is not None and req.max_output_tokens > dep.max_output_tokens:
        return Dropped(dep, f"max output {dep.max_output_tokens} < requested {req.max_output_tokens}")
    needed = req.prompt_tokens_estimate + (req.max_output_tokens or 0)
    if needed > dep.context_window:
        return Dropped(dep, f"context window {dep.context_window} < about {needed} tokens needed")
    refusal = refuse(req, dep)
    if refusal:
        return Dropped(dep, refusal)
    until = view.cooldowns.get(dep.key)
    if until is not None and until > view.now:
        return Dropped(dep, "cooling down after rate limiting", retry_after_s=until - view.now)
    return None


def plan(
    req: ChatRequest,
    deployments: tuple[Deployment, ...],
    prices: PriceBook,
    view: LiveView,
    refuse: Refusal,
) -> Plan:
    kept: list[Candidate] = []
    dropped: list[Dropped] = []
    output = req.max_output_tokens or DEFAULT_EXPECTED_OUTPUT
    for dep in deployments:
        reason = _ineligible(req, dep, view, refuse)
        if reason is not None:
            dropped.append(reason)
            continue
        price = prices.at(dep.provider, dep.model, view.today)
        if price is None:
            dropped.append(Dropped(dep, "no price in the price book"))
            continue
        cost = price.estimate(req.prompt_tokens_estimate, output)
        if req.prefs.max_price_usd is not None and cost > Decimal(str(req.prefs.max_price_usd)):
            dropped.append(Dropped(dep, f"expected cost {cost:.6f} USD above max_price_usd"))
            continue
        kept.append(Candidate(dep, cost, f"expected cost {cost:.6f} USD"))
    kept.sort(key=_order_key(req))
    if req.prefs.allow_fallbacks is False and len(kept) > 1:
        dropped.extend(Dropped(c.deployment, "fallbacks disabled by request") for c in kept[1:])
        kept = kept[:1]
    return Plan(req.model, tuple(kept), tuple(dropped))


def _order_key(req: ChatRequest) -> Callable[[Candidate], tuple[int, Decimal, str]]:
    order = req.prefs.providers.order if req.prefs.providers and req.prefs.providers.order else []
    rank = {name: i for i, name in enumerate(order)}

    def key(c: Candidate) -> tuple[int, Decimal, str]:
        return (rank.get(c.deployment.provider, len(rank)), c.expected_cost_usd, c.deployment.provider)

    return key
