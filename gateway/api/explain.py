"""POST /v1/route/explain: the plan the gateway would follow for a request, without sending it."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.api.auth import apply_key, authenticate
from gateway.api.parse import parse_chat_request, read_body
from gateway.routing.types import Plan
from gateway.runtime import Runtime


def plan_to_json(the_plan: Plan, breakers: Mapping[str, str]) -> dict[str, Any]:
    """The plan with the figures behind every candidate and the reason for every drop."""
    plan_rows = []
    for rank, cand in enumerate(the_plan.candidates, 1):
        dep = cand.deployment
        row: dict[str, Any] = {
            "rank": rank,
            "provider": dep.provider,
            "model_id": dep.model_id,
            "expected_cost_usd": str(cand.expected_cost_usd),
            "reason": cand.reason,
            "breaker": breakers.get(dep.key, "closed"),
        }
        if cand.figures is not None:
            row["expected_ttft_ms"] = round(cand.figures.ttft_ms, 1)
            row["expected_latency_ms"] = round(cand.figures.latency_ms, 1)
            row["latency_samples"] = cand.figures.samples
            row["meets_slo"] = cand.figures.meets_slo
            if cand.figures.slo_ttft_ms is not None and cand.figures.slo_latency_ms is not None:
                row["slo_ttft_ms"] = round(cand.figures.slo_ttft_ms, 1)
                row["slo_latency_ms"] = round(cand.figures.slo_latency_ms, 1)
        plan_rows.append(row)
    dropped = [
        {"provider": d.deployment.provider, "model_id": d.deployment.model_id, "reason": d.reason}
        for d in the_plan.dropped
    ]
    settings = the_plan.settings
    objective = the_plan.objective or settings.objective
    return {
        "model": the_plan.model,
        "rule": the_plan.rule,
        "rejected": the_plan.rejected,
        "objective": {
            "prefer": objective.prefer,
            "max_ttft_ms": objective.max_ttft_ms,
            "max_latency_ms": objective.max_latency_ms,
            "percentile": objective.percentile,
        },
        "split": {
            "targets": [
                {"provider": t.provider, "by_objective": t.provider is None, "weight_pct": t.weight}
                for t in settings.split
            ],
            "chose": the_plan.split,
        }
        if settings.split
        else None,
        "fallback": settings.fallback,
        "retry": {"attempts": settings.retry.attempts, "deadline_ms": settings.retry.deadline_ms},
        "hedge": _hedge_json(the_plan),
        "plan": plan_rows,
        "dropped": dropped,
    }


def _hedge_json(the_plan: Plan) -> dict[str, Any] | None:
    """The hedge in force: its delay (None: this request is not hedged) and why."""
    hedge = the_plan.hedge
    if hedge is None:
        return None
    config = hedge.config
    return {
        "delay_ms": None if hedge.delay_ms is None else round(hedge.delay_ms, 1),
        "reason": hedge.reason,
        "after": "p95" if config.after_ms is None else config.after_ms,
        "max_hedges": config.max_hedges,
        "max_extra_cost_pct": config.max_extra_cost_pct,
        "only": config.only,
        "allow_tools": config.allow_tools,
    }


def make_handler(rt: Runtime) -> Any:
    async def explain(request: Request) -> Response:
        caller = authenticate(request, rt.keys, "chat")
        raw = await read_body(request, rt.settings.max_body_bytes, rt.settings.body_timeout_s)
        req = await parse_chat_request(raw, rt.catalogue, "explain_" + secrets.token_hex(6))
        key_id = apply_key(caller, req, rt.policy.current.teams.require_key_team)
        the_plan = rt.dispatcher.plan(req, key_id)
        now = rt.state.view().now
        breakers = {key: b.status(now) for key, b in rt.state.breakers.items()}
        return Response(orjson.dumps(plan_to_json(the_plan, breakers)), media_type="application/json")

    return explain
