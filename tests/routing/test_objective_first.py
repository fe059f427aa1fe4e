"""Orderings never contradict the objective's hard constraints: the pool preference, the
policy's and the request's `order` and a weighted split rank only among the deployments
expected to meet the SLO; a split can leave a share to the objective's own pick."""

from __future__ import annotations

from dataclasses import replace

from gateway.api.explain import plan_to_json
from gateway.routing.policy.model import Objective, Policy, PoolSpill, SplitTarget
from gateway.routing.scoring import BY_OBJECTIVE
from gateway.routing.types import PoolLoad
from tests.routing.test_planner import HOSTED_ONLY, order, request, run, view

#: Only Groq's prior (200 ms) meets it at the median; the pool's is 300 ms.
SLO = Objective("cost", max_ttft_ms=250, percentile="p50")
CALM = {"llama-4-scout": PoolLoad(healthy_replicas=2, queue_depth=0, running=1, kv_cache_usage=0.1)}


def meets(plan: object, provider: str) -> bool | None:
    cand = next(c for c in plan.candidates if c.deployment.provider == provider)  # type: ignore[attr-defined]
    return cand.figures.meets_slo  # type: ignore[no-any-return]


def test_the_pool_first_never_breaks_the_slo() -> None:
    pool_first = replace(HOSTED_ONLY, pool=PoolSpill(prefer_pool=True, cost_model="sunk"))
    without_slo = run(request(), view(pool=CALM), Policy("t", pool_first))
    assert order(without_slo)[0] == "vllm"
    with_slo = run(request(), view(pool=CALM), Policy("t", replace(pool_first, objective=SLO)))
    assert order(with_slo)[0] == "groq"
    assert meets(with_slo, "vllm") is False
    missing = [c.figures.latency_ms for c in with_slo.candidates[1:] if c.figures]
    assert missing == sorted(missing)  # those behind stay in the objective's order: fastest first


def test_policy_and_request_order_rank_only_among_those_that_meet_the_slo() -> None:
    ordered = Policy("t", replace(HOSTED_ONLY, order=("bedrock",), objective=SLO))
    assert order(run(request(), policy=ordered))[0] == "groq"
    with_slo = Policy("t", replace(HOSTED_ONLY, objective=SLO))
    asked = run(request(corral={"providers": {"order": ["together"]}}), policy=with_slo)
    assert order(asked)[0] == "groq"
    loose = Objective("cost", max_ttft_ms=1000, percentile="p50")  # everyone meets it: order rules
    loosely = Policy("t", replace(HOSTED_ONLY, order=("bedrock",), objective=loose))
    assert order(run(request(), policy=loosely))[0] == "bedrock"


def test_a_split_never_sends_traffic_that_misses_the_slo_first() -> None:
    policy = Policy("t", replace(HOSTED_ONLY, split=(SplitTarget("together", 100),), objective=SLO))
    p = run(request(), policy=policy, rng=0.3)
    assert order(p)[0] == "groq" and p.split is None


def test_a_split_can_leave_the_rest_to_the_objective() -> None:
    canary = (SplitTarget("together", 10), SplitTarget(None, 90))
    policy = Policy("t", replace(HOSTED_ONLY, split=canary))
    objective_pick = order(run(request(), policy=Policy("t", HOSTED_ONLY)))[0]
    assert objective_pick != "together"
    plans = [run(request(), policy=policy, rng=i / 100) for i in range(100)]
    firsts = [order(p)[0] for p in plans]
    assert firsts.count("together") == 10
    assert firsts.count(objective_pick) == 90
    assert {p.split for p in plans} == {"together", BY_OBJECTIVE}


def test_the_plan_carries_the_requests_effective_objective() -> None:
    policy = Policy("t", replace(HOSTED_ONLY, objective=SLO))
    p = run(request(corral={"prefer": "latency", "max_ttft_ms": 900}), policy=policy)
    assert p.objective is not None
    assert p.objective.prefer == "latency" and p.objective.max_ttft_ms == 250 and p.objective.percentile == "p50"
    q = run(request(corral={"prefer": "latency"}))
    assert q.objective is not None and q.objective.prefer == "latency"


def test_explain_shows_the_split_and_the_requests_own_objective() -> None:
    canary = (SplitTarget("together", 10), SplitTarget(None, 90))
    policy = Policy("t", replace(HOSTED_ONLY, split=canary, objective=SLO))
    shown = plan_to_json(run(request(corral={"prefer": "latency"}), policy=policy, rng=0.5), {})
    assert shown["objective"] == {"prefer": "latency", "max_ttft_ms": 250, "max_latency_ms": None, "percentile": "p50"}
    assert shown["split"]["chose"] == BY_OBJECTIVE
    assert shown["split"]["targets"][1] == {"provider": None, "by_objective": True, "weight_pct": 90}
    first = shown["plan"][0]
    assert first["provider"] == "groq" and first["meets_slo"] is True and first["slo_ttft_ms"] == 200
    assert plan_to_json(run(request(), policy=Policy("t", HOSTED_ONLY)), {})["split"] is None
