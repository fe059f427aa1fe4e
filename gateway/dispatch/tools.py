"""Tool-call validation inside the dispatch loop: check each answer, re-ask the same
deployment with the validator's errors (on the vLLM pool, constrained so the answer is
valid by construction), and fall over when the re-ask budget is spent. Every invalid
answer the provider billed is kept as an attempt record, so the ledger shows what bad
tool calls cost."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from opentelemetry import trace

from gateway.catalogue.deployments import Deployment
from gateway.metering.events import AttemptRecord
from gateway.providers.base import Completion, Provider, UpstreamStream
from gateway.providers.errors import ErrorKind, UpstreamError
from gateway.routing.policy.model import RouteSettings
from gateway.schema.chat import ChatRequest, estimate_prompt_tokens
from gateway.schema.usage import Usage
from gateway.toolcalls import Action, Attempt, StreamGate, ToolGuard

MODE_RANK = {"off": 0, "report": 1, "repair": 2, "retry": 3}
CostFn = Callable[[Deployment, Usage], Decimal]


def guard_for(req: ChatRequest, settings: RouteSettings) -> ToolGuard:
    """The policy's mode, lowered (never raised) by the request's own `tool_validation`."""
    mode = settings.tool_calls.mode
    asked = req.prefs.tool_validation
    if asked is not None and MODE_RANK[asked] < MODE_RANK[mode]:
        mode = asked
    return ToolGuard(req.tool_contract, mode, settings.tool_calls.reasks)


def reask_request(req: ChatRequest, guard: ToolGuard, attempt: Attempt, provider: Provider) -> ChatRequest:
    body = {**req.body, "messages": guard.reask_messages(req.body["messages"], attempt)}
    if provider.constrains_reasks:
        body |= guard.constraint(attempt) or {}
    return replace(req, body=body, prompt_tokens_estimate=estimate_prompt_tokens(body))


def _invalid(dep: Deployment, attempt: Attempt | None) -> UpstreamError:
    errors = "; ".join((attempt.errors if attempt else ())[:3]) or "invalid answer"
    return UpstreamError(
        ErrorKind.TOOL_CALLS_INVALID, f"tool calls did not validate: {errors}", provider=dep.provider, status=200
    )


def failure_kinds(attempt: Attempt | None) -> tuple[str, ...]:
    """Why an answer was invalid, as a few stable kinds (for metrics and traces)."""
    if attempt is None:
        return ("invalid",)
    kinds = set()
    if attempt.over_budget:
        kinds.add("validation_budget")
    for call in attempt.calls:
        if not call.declared:
            kinds.add("unknown_tool")
        elif not call.parsed:
            kinds.add("invalid_json")
        elif call.errors:
            kinds.add("schema_violation")
    if attempt.reply_errors:
        kinds.add("reply_rule")
    return tuple(sorted(kinds)) or ("invalid",)


def _billed(
    dep: Deployment, usage: Usage, cost: Decimal, attempt: Attempt | None, started: float, *, reask: bool
) -> AttemptRecord:
    """The record of an invalid answer the provider billed; also an event on the request's span."""
    errors = "; ".join((attempt.errors if attempt else ())[:3])
    kinds = failure_kinds(attempt)
    trace.get_current_span().add_event(
        "corral.tool_calls.invalid",
        {
            "gen_ai.system": dep.provider,
            "corral.deployment": dep.key,
            "corral.errors": errors,
            "corral.failure_kinds": list(kinds),
            "corral.reask": reask,
        },
    )
    return AttemptRecord(
        dep.provider,
        dep.model_id,
        ErrorKind.TOOL_CALLS_INVALID.value,
        200,
        (time.perf_counter() - started) * 1000,
        errors,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cached_tokens=usage.cached_tokens,
        usage_estimated=usage.estimated,
        cost_usd=cost,
        # True only when this answer was followed by a re-ask: the ledger's re-ask cost counts
        # those; an invalid answer that was not re-asked (budget spent, hopeless finish, fall
        # over) is still billed and kept, with reask false.
        reask=reask,
        failure_kinds=kinds,
    )


async def checked_complete(
    provider: Provider, dep: Deployment, req: ChatRequest, guard: ToolGuard, records: list[AttemptRecord], cost: CostFn
) -> Completion:
    """One deployment's answer, checked; re-asked there while the guard allows. Each
    invalid answer goes into `records` (with its usage and cost: the provider billed it)."""
    guard.next_deployment(f"{dep.provider}/{dep.model_id}")
    request = req
    while True:
        started = time.perf_counter()
        completion = await provider.complete(request, dep)
        decision = await guard.acheck(completion.body)
        if decision.action is Action.DELIVER:
            completion.body = decision.body
            return completion
        asked_again = decision.action is Action.REASK and decision.attempt is not None
        usage = completion.usage
        records.append(_billed(dep, usage, cost(dep, usage), decision.attempt, started, reask=asked_again))
        if not asked_again or decision.attempt is None:
            raise _invalid(dep, decision.attempt)
        request = reask_request(req, guard, decision.attempt, provider)


@dataclass
class GuardedStream:
    """The client's view of a streamed answer with tools: content live, tool calls once
    complete and valid, re-asks on the same deployment continued in the same stream.
    After iteration, `usage` is the delivered answer's and `billed` the invalid ones'."""

    provider: Provider
    dep: Deployment
    req: ChatRequest
    guard: ToolGuard
    stream: UpstreamStream
    first: list[dict[str, Any]] | None
    batches: AsyncIterator[list[dict[str, Any]]]
    cost: CostFn
    billed: list[AttemptRecord] = field(default_factory=list)
    usage: Usage | None = None
    failure: UpstreamError | None = None

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        gate = StreamGate(self.guard)
        self.guard.next_deployment(f"{self.dep.provider}/{self.dep.model_id}")
        first, batches = self.first or [], self.batches
        while True:
            started = time.perf_counter()
            for chunk in first:
                for out in gate.feed(chunk):
                    yield out
            async for batch in batches:
                for chunk in batch:
                    for out in gate.feed(chunk):
                        yield out
            end = await gate.settle()
            usage = self.stream.usage or Usage(self.req.prompt_tokens_estimate, 0, 0, True)
            if end.action is Action.DELIVER:
                self.usage = usage
                for out in end.chunks:
                    yield out
                return
            asked_again = end.action is Action.REASK and end.attempt is not None
            self.billed.append(
                _billed(self.dep, usage, self.cost(self.dep, usage), end.attempt, started, reask=asked_again)
            )
            await self.stream.aclose()
            if end.action is not Action.REASK or end.attempt is None:
                self.failure = _invalid(self.dep, end.attempt)
                raise self.failure
            retry = reask_request(self.req, self.guard, end.attempt, self.provider)
            self.stream = await self.provider.stream(retry, self.dep)
            first, batches, gate = [], self.stream.batches(), gate.next()
