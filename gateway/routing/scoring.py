"""Expected cost and latency per deployment, and the objective that ranks them."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from gateway.catalogue.deployments import Deployment
from gateway.routing.policy.model import Objective, RouteSettings, SplitTarget
from gateway.routing.stats import FALLBACK_PRIOR, LatencyStats, Prior, prior_estimate
from gateway.routing.types import Candidate, Figures, LiveView, PoolLoad
from gateway.schema.chat import ChatRequest

#: What explain says when a split's pick was the objective's own.
BY_OBJECTIVE = "by objective"
#: Extra expected wait per request queued ahead of us in the pool (ms), before live data refines it.
POOL_QUEUE_PENALTY_MS = 400.0


def figures_for(
    dep: Deployment,
    cost: Decimal,
    output_tokens: int,
    stats: LatencyStats | None,
    priors: Mapping[str, Prior],
    view: LiveView,
    settings: RouteSettings,
    objective: Objective,
) -> Figures:
    if stats is not None:
        estimate = stats.estimate(output_tokens, view.now)
        samples = stats.samples
    else:
        estimate = prior_estimate(priors.get(dep.provider) or FALLBACK_PRIOR, output_tokens)
        samples = 0
    ttft, latency = estimate.ttft_ms, estimate.latency_ms
    wait = 0.0
    if dep.pooled and view.pool is not None and (load := view.pool.get(dep.model)) is not None:
        wait = POOL_QUEUE_PENALTY_MS * _queue_ahead(load)
        ttft += wait
        latency += wait
    rank_cost = Decimal(0) if dep.pooled and settings.pool.cost_model == "sunk" else cost
    meets = None
    slo_ttft = slo_latency = None
    if objective.max_ttft_ms is not None or objective.max_latency_ms is not None:
        slo_ttft, slo_latency = estimate.at(objective.percentile)
        slo_ttft += wait
        slo_latency += wait
        meets = (objective.max_ttft_ms is None or slo_ttft <= objective.max_ttft_ms) and (
            objective.max_latency_ms is None or slo_latency <= objective.max_latency_ms
        )
    p95_ttft, p95_latency = estimate.at("p95")
    return Figures(cost, rank_cost, ttft, latency, samples, meets, slo_ttft, slo_latency, p95_ttft, p95_latency)


def _queue_ahead(load: PoolLoad) -> float:
    """Requests expected ahead of ours: the shortest known replica queue (the pool sends the
    request to its least-loaded replica), or the average when only totals are known."""
    if load.replicas:
        return float(min((r.queue_depth for r in load.replicas if r is not None), default=0))
    return load.queue_depth / max(load.healthy_replicas, 1)


def effective_objective(req: ChatRequest, settings: RouteSettings) -> Objective:
    """The policy's objective, narrowed by the request's own preferences."""
    base = settings.objective
    if req.prefs.prefer is None and req.prefs.max_ttft_ms is None:
        return base  # nearly every request: the policy's own (immutable) objective
    prefer = req.prefs.prefer or base.prefer
    slo = base.max_ttft_ms
    if req.prefs.max_ttft_ms is not None:
        slo = req.prefs.max_ttft_ms if slo is None else min(slo, req.prefs.max_ttft_ms)
    return Objective(prefer, base.cost_weight, base.latency_weight, slo, base.max_latency_ms, base.percentile)


def _rank_key(
    f: Figures, objective: Objective, c_lo: float, c_span: float, l_lo: float, l_span: float
) -> tuple[float, ...]:
    cost, lat = float(f.rank_cost_usd), f.latency_ms
    slo_miss = 1.0 if f.meets_slo is False else 0.0
    if objective.prefer == "latency":
        return (slo_miss, lat, cost)
    if objective.prefer == "balanced":
        score = objective.cost_weight * (cost - c_lo) / c_span + objective.latency_weight * (lat - l_lo) / l_span
        return (slo_miss, score, cost)
    return (1.0, lat, cost) if slo_miss else (0.0, cost, lat)


def _ranked(cands: list[Candidate], objective: Objective) -> list[Candidate]:
    if len(cands) < 2:
        return list(cands)
    figs = [c.figures for c in cands]
    assert all(f is not None for f in figs)
    costs = [float(f.rank_cost_usd) for f in figs if f]
    lats = [f.latency_ms for f in figs if f]
    c_lo, l_lo = min(costs, default=0.0), min(lats, default=0.0)
    c_span = (max(costs, default=0.0) - c_lo) or 1.0
    l_span = (max(lats, default=0.0) - l_lo) or 1.0
    keyed = [
        (_rank_key(f, objective, c_lo, c_span, l_lo, l_span), c.deployment.provider, i)
        for i, (c, f) in enumerate(zip(cands, figs, strict=True))
        if f is not None
    ]
    keyed.sort()
    return [cands[i] for _, _, i in keyed]


def split_pick(cands: list[Candidate], split: tuple[SplitTarget, ...], rng: float) -> Candidate | None:
    """Weighted choice among the split's eligible targets, with `rng` in [0, 1). A
    `by_objective` share is always eligible and picks None: the objective's order stands."""
    eligible: list[tuple[SplitTarget, Candidate | None]] = []
    for target in split:
        if target.weight <= 0:
            continue
        if target.provider is None:
            eligible.append((target, None))
        else:
            eligible += [(target, c) for c in cands if c.deployment.provider == target.provider]
    total = sum(t.weight for t, _ in eligible)
    if not eligible or total <= 0:
        return None
    point = rng * total
    for target, cand in eligible:
        point -= target.weight
        if point < 0:
            return cand
    return eligible[-1][1]


def order_candidates(
    cands: list[Candidate], req: ChatRequest, settings: RouteSettings, objective: Objective, rng: float
) -> tuple[list[Candidate], str | None]:
    """Objective first; then, only among the candidates that meet the objective's SLO (all
    of them when it has none), the pool preference, the policy's order, the request's order
    and a weighted split's pick, each moving its favourite to the front. A deployment
    expected to miss the SLO never moves ahead of one expected to meet it: those stay
    behind, in the objective's order (fastest first). Also returns what a split chose
    (a provider, or "by objective"; None without a split or with no eligible target)."""
    ranked = _ranked(cands, objective)
    meeting = [c for c in ranked if c.figures is None or c.figures.meets_slo is not False]
    missing = [c for c in ranked if c.figures is not None and c.figures.meets_slo is False]
    if settings.pool.prefer_pool:
        meeting.sort(key=lambda c: not c.deployment.pooled)
    for order in (settings.order, (req.prefs.providers.order if req.prefs.providers else None) or ()):
        if order:
            rank = {name: i for i, name in enumerate(order)}
            meeting.sort(key=lambda c: rank.get(c.deployment.provider, len(rank)))
    chose = None
    if settings.split and meeting:
        pick = split_pick(meeting, settings.split, rng)
        if pick is not None:
            meeting.remove(pick)
            meeting.insert(0, pick)
            chose = pick.deployment.provider
        elif any(t.provider is None for t in settings.split):
            chose = BY_OBJECTIVE
    return meeting + missing, chose
