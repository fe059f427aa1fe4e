"""Everything that follows dispatch for every request, in one place: the answer's cost,
its ledger event (also fed to metrics, budgets and the access log), the caller's token
bucket settled, the budget check before and the request span closed after. The HTTP edge
calls `budget_warnings` before dispatch and `served` / `failed` after it; a stream is
accounted for by `gateway.dispatch.relay` when it ends, however it ends.

What the answer waits for, and what it does not: `served` writes the event to the journal
(`journal`: the durable record, before the client is answered) and returns the cost the
answer's headers carry; the rest (metrics, budgets, the access log, the token bucket's
settlement, hedge spend, the span's end) is `defer`red to the event loop's next turn, which
comes after the endpoint has written the answer (it writes without waiting) and before the
loop reads anything more from any connection: a client's next request, sent once it has
its answer, finds all of it applied (`tests/api/test_bookkeeping_order.py`). At one
connection this takes that work off the time between a request and its answer."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from opentelemetry.trace import Span

from gateway.dispatch.loop import Dispatcher, Outcome
from gateway.errors import Code, GatewayError
from gateway.keys.limiter import RateLimiter, TokenCharge
from gateway.metering.budgets import Budgets
from gateway.metering.events import AttemptRecord, UsageEvent
from gateway.schema.chat import ChatRequest
from gateway.schema.usage import Usage
from gateway.telemetry import outcomes
from gateway.telemetry.outcomes import Ended
from gateway.telemetry.refusals import Refusals
from gateway.telemetry.tracing import fail_span, finish_request_span

COST_PLACES = Decimal("0.0000000001")


@dataclass(slots=True)
class Call:
    """One client request on its way through: when it started, who sent it, what admission
    took from their token bucket, and its trace span."""

    req: ChatRequest
    started: float
    key_id: str | None
    charge: TokenCharge | None
    span: Span


def billed(attempts: list[AttemptRecord] | tuple[AttemptRecord, ...]) -> Decimal:
    """What the provider billed for answers we did not deliver (re-asked tool calls)."""
    return sum((a.cost_usd for a in attempts), Decimal(0))


def hedge_extra(attempts: list[AttemptRecord] | tuple[AttemptRecord, ...]) -> Decimal:
    """What hedging added: the cost of the attempts that lost a hedge race."""
    return sum((a.cost_usd for a in attempts if a.hedge == "lost"), Decimal(0))


def _tokens_used(usage: Usage, attempts: tuple[AttemptRecord, ...] | list[AttemptRecord]) -> int:
    """Every token the providers reported for a request: the answer and any billed attempts."""
    return usage.total_tokens + sum(a.prompt_tokens + a.completion_tokens for a in attempts)


class Accounting:
    def __init__(
        self,
        dispatcher: Dispatcher,
        journal: Callable[[UsageEvent], None],
        tally: Callable[[UsageEvent], None],
        limiter: RateLimiter,
        budgets: Budgets,
        refusals: Refusals,
        ended: Callable[[Ended], None],
        defer: Callable[..., object],
    ) -> None:
        self.dispatcher = dispatcher
        #: Appends an event to the durable journal (then the ledger): before the answer.
        self.journal = journal
        #: Feeds an event to metrics, budgets and the access log: deferred.
        self.tally = tally
        #: Runs a callback on the event loop's next turn (`loop.call_soon`).
        self.defer = defer
        self.limiter = limiter
        self.budgets = budgets
        self.refusals = refusals
        #: Counts each client request once, by how it ended (`corral_requests_total`).
        self.ended = ended

    def budget_warnings(self, call: Call) -> tuple[str, ...]:
        """Refuse a request whose team or key has spent its budget; else the warnings to send."""
        team = (call.req.prefs.tags or {}).get("team")
        try:
            return self.budgets.check(team, call.key_id).warnings
        except GatewayError as err:
            if err.code == Code.BUDGET_EXCEEDED:
                self.refusals.rate_limited("budget", team)
            raise

    def refused(self, model: str | None, err: GatewayError) -> None:
        """A request refused before it had a `Call` (authentication, parsing, key limits)."""
        self.ended(outcomes.refused(model, err))

    def replayed(self, model: str) -> None:
        """A request answered from the idempotency store (the answer kept for its key)."""
        self.ended(outcomes.replayed(model))

    def cache_hit(self, call: Call, provider: str, model_id: str, saved_usd: Decimal, original: str) -> None:
        """An answer served from the response cache: a ledger row of its own kind ($0,
        what it saved, the original request id); nothing taken from the token bucket."""
        req = call.req
        event = UsageEvent(
            request_id=req.request_id,
            at=datetime.now(UTC),
            model=req.model,
            provider=provider,
            model_id=model_id,
            status="cache_hit",
            prompt_tokens=0,
            completion_tokens=0,
            cached_tokens=0,
            usage_estimated=False,
            cost_usd=Decimal(0),
            latency_ms=(time.perf_counter() - call.started) * 1000,
            ttft_ms=None,
            stream=req.stream,
            api_key_id=call.key_id,
            tags=dict(req.prefs.tags or {}),
            saved_usd=saved_usd,
            cache_of=original,
        )
        self.journal(event)
        self.defer(self._cache_hit_settled, call, event)

    def _cache_hit_settled(self, call: Call, event: UsageEvent) -> None:
        self.tally(event)
        self.ended(outcomes.cached(event.model, event.provider))
        self.limiter.settle(call.charge, 0)
        finish_request_span(
            call.span,
            provider=event.provider,
            model_id=event.model_id,
            input_tokens=0,
            output_tokens=0,
            cost_usd="0",
            attempts=0,
            rule=None,
            tool_validation=None,
            status="cache_hit",
        )

    def crashed(self, model: str | None) -> None:
        """A request the gateway failed on with an unexpected exception."""
        self.ended(outcomes.internal(model))

    def failed(self, call: Call, err: GatewayError) -> None:
        """A request that reached a backend gets its ledger row even when it failed."""
        self.ended(outcomes.refused(call.req.model, err))
        self.limiter.settle(call.charge, _tokens_used(Usage(), err.attempt_records))
        if err.attempt_records:
            event = self._event(call, None, Usage(), Decimal(0), "error", attempts=err.attempt_records)
            self.journal(event)
            self.tally(event)
            spent = billed(err.attempt_records)
            self.dispatcher.state.spent(err.rule, float(spent), float(hedge_extra(err.attempt_records)))
        fail_span(call.span, err.code or str(err.status), err.message)

    def served(
        self, call: Call, outcome: Outcome, usage: Usage, status: str = "ok", ttft_ms: float | None = None
    ) -> Decimal:
        """Account for an answer (whole, or a stream that ended); returns what it cost in all.
        Its event is in the journal on return; the rest follows on the loop's next turn."""
        now = datetime.now(UTC)
        cost = self.dispatcher.cost(outcome.deployment, usage, now.date())
        event = self._event(call, outcome, usage, cost, status, ttft_ms, at=now)
        self.journal(event)
        total = cost + billed(outcome.attempts)
        self.defer(self._settled, call, outcome, usage, event, total)
        return total

    def _settled(self, call: Call, outcome: Outcome, usage: Usage, event: UsageEvent, total: Decimal) -> None:
        """The bookkeeping of a served request that its answer does not wait for."""
        dep = outcome.deployment
        self.tally(event)
        self.ended(outcomes.finished(event.model, dep.provider, event.status, outcome.plan.rule, outcome.plan.split))
        self.limiter.settle(call.charge, _tokens_used(usage, outcome.attempts))
        self.dispatcher.state.spent(outcome.plan.rule, float(total), float(hedge_extra(outcome.attempts)))
        finish_request_span(
            call.span,
            provider=dep.provider,
            model_id=dep.model_id,
            input_tokens=usage.prompt_tokens,
            output_tokens=usage.completion_tokens,
            cost_usd=str(total.quantize(COST_PLACES)),
            attempts=len(outcome.attempts),
            rule=outcome.plan.rule,
            tool_validation=outcome.tool_validation,
            status=event.status,
        )

    def _event(
        self,
        call: Call,
        outcome: Outcome | None,
        usage: Usage,
        cost: Decimal,
        status: str,
        ttft_ms: float | None = None,
        attempts: tuple[AttemptRecord, ...] = (),
        at: datetime | None = None,
    ) -> UsageEvent:
        req = call.req
        dep = outcome.deployment if outcome else None
        return UsageEvent(
            request_id=req.request_id,
            at=at or datetime.now(UTC),
            model=req.model,
            provider=dep.provider if dep else "",
            model_id=dep.model_id if dep else "",
            status=status,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            usage_estimated=usage.estimated,
            cost_usd=cost,
            latency_ms=(time.perf_counter() - call.started) * 1000,
            ttft_ms=ttft_ms,
            stream=req.stream,
            attempts=tuple(outcome.attempts) if outcome else attempts,
            api_key_id=call.key_id,
            tags=dict(req.prefs.tags or {}),
            tool_validation=outcome.tool_validation if outcome else None,
        )
