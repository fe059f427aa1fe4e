"""The one loop that turns a plan into an answer: try each deployment in order, retry
transient faults on the same deployment (tenacity), fall over on errors another backend
could survive, stop at once on errors that are the caller's, all within the policy's
attempt budget and deadline. Outcomes feed the live state (breakers, cooldowns, stats)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

from opentelemetry.trace import NoOpTracer, Tracer
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from gateway.catalogue.deployments import Catalogue, Deployment
from gateway.catalogue.prices import PriceBook
from gateway.dispatch.errors import attempts_extra, caller_error, exhausted, no_candidates, rejected, timed_out
from gateway.dispatch.hedge import Raced, RaceFailed, Racer, dispose, mark_race
from gateway.dispatch.tools import GuardedStream, checked_complete, guard_for
from gateway.errors import GatewayError
from gateway.live.state import LiveState
from gateway.metering.events import AttemptRecord
from gateway.providers.base import Completion, Provider, RateLimitState, UpstreamStream
from gateway.providers.errors import HEALTH_FAILURES, ErrorKind, UpstreamError
from gateway.routing.planner import plan
from gateway.routing.policy.model import DEFAULT_POLICY, Policy, Retry
from gateway.routing.types import Candidate, Plan
from gateway.schema.chat import ChatRequest
from gateway.schema.usage import Usage
from gateway.telemetry.tracing import INPUT_TOKENS, OUTPUT_TOKENS, attempt_span, fail_span

T = TypeVar("T")
_Batch = list[dict[str, Any]]
#: An opened stream, its first chunks, and when the attempt that opened it began.
_Opened = tuple[UpstreamStream, AsyncIterator[_Batch], _Batch | None, float]
#: Back-off before the first retry on the same deployment (later ones grow, with jitter).
FIRST_RETRY_WAIT_S = 0.05
#: Why an attempt in flight when the request's deadline passed (or its client left) ended.
CANCELLED = "no answer before the request's deadline (or its client left); attempt cancelled"
#: Kinds that say nothing about the request itself: always worth the next deployment
#: (a garbled answer is the backend's fault, so another one may well serve the request).
ALWAYS_FALL_OVER = frozenset(
    {
        ErrorKind.MODEL_GONE,
        ErrorKind.AUTH,
        ErrorKind.CONTEXT_TOO_LONG,
        ErrorKind.TOOL_CALLS_INVALID,
        ErrorKind.MALFORMED_RESPONSE,
        ErrorKind.UNSUPPORTED,
    }
)


@dataclass(slots=True)
class Outcome:
    """Which deployment served the request, and every attempt on the way."""

    deployment: Deployment
    expected_cost_usd: Decimal
    plan: Plan
    attempts: list[AttemptRecord] = field(default_factory=list)
    #: Tool-call validation verdict (valid, repaired, retried:N, invalid); None when not applicable.
    tool_validation: str | None = None
    #: Request fields accepted but without effect on this answer (`x-corral-ignored-params`).
    ignored: tuple[str, ...] = ()
    #: A hedge was started: "first" or "hedge" says which attempt answered; None: no hedge.
    hedge_winner: str | None = None


@dataclass(slots=True)
class OpenStream:
    outcome: Outcome
    stream: UpstreamStream
    #: The rest of the stream, in groups of chunks that arrived together.
    batches: AsyncIterator[_Batch]
    #: Read before committing to this deployment, so a stream that fails at once can still fall over.
    first: _Batch | None
    opened_at: float
    #: With tools: the checked view of the stream (re-asks included); iterate this instead.
    guarded: GuardedStream | None = None
    #: When the attempt that opened this stream began (time.perf_counter), after any failed
    #: attempts and back-offs on other deployments.
    attempt_started: float = 0.0


class Dispatcher:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        catalogue: Catalogue,
        prices: PriceBook,
        state: LiveState,
        policy: Callable[[], Policy] = lambda: DEFAULT_POLICY,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        tracer: Tracer | None = None,
        timer: Callable[[], float] = time.perf_counter,
        racer: Racer | None = None,
        on_hedge: Callable[[str, Deployment], None] | None = None,
        on_wait: Callable[[], None] | None = None,
    ) -> None:
        self.providers = providers
        self.catalogue = catalogue
        self.prices = prices
        self.state = state
        self.policy = policy
        self.sleep = sleep
        self.rng = rng
        self.tracer = tracer or NoOpTracer()
        #: Measures a non-streamed answer's total time (the simulator substitutes virtual time).
        self.timer = timer
        #: Runs hedge races (the simulator substitutes virtual time).
        self.racer = racer or Racer()
        #: Told of every hedge event (started, won, cancelled) with its deployment (metrics).
        self.on_hedge = on_hedge
        #: Told just before an attempt goes upstream, when the loop is about to be free until
        #: the answer comes (the metrics drain there, off the requests' path).
        self.on_wait = on_wait
        state.available = frozenset(providers)

    def plan(self, req: ChatRequest, key_id: str | None = None) -> Plan:
        deployments = self.catalogue.deployments(req.model)
        view = self.state.view()
        return plan(req, deployments, self.prices, view, self._refusal, self.policy(), self.rng(), key=key_id)

    def _refusal(self, req: ChatRequest, dep: Deployment) -> str | None:
        return self.providers[dep.provider].unsupported(req, dep)

    def cost(self, dep: Deployment, usage: Usage, when: date) -> Decimal:
        price = self.prices.at(dep.provider, dep.model, when)
        return price.cost(usage) if price is not None else Decimal(0)

    async def complete(self, req: ChatRequest, key_id: str | None = None) -> tuple[Completion, Outcome]:
        the_plan = self.plan(req, key_id)
        guard = guard_for(req, the_plan.settings)
        #: Every attempt in order; invalid answers that were re-asked go in as they happen.
        records: list[AttemptRecord] = []

        async def attempt(provider: Provider, dep: Deployment) -> Completion:
            started = self.timer()
            before = len(records)
            if guard.active:
                completion = await checked_complete(provider, dep, req, guard, records, self._cost_today)
            else:
                completion = await provider.complete(req, dep)
            self._observe_complete(dep, completion, self.timer() - started, reasked=len(records) > before)
            return completion

        try:
            completion, outcome = await self._run(the_plan, attempt, records, prompt_tokens=req.prompt_tokens_estimate)
        except GatewayError as err:
            if guard.active and guard.verdict == "invalid":
                failure = guard.failure()
                failure.attempt_records = err.attempt_records
                raise failure from err
            raise
        outcome.tool_validation = guard.verdict if guard.active else None
        outcome.ignored = self.ignored(req, outcome.deployment.provider)
        return completion, outcome

    def ignored(self, req: ChatRequest, provider: str) -> tuple[str, ...]:
        """Ignored everywhere (the parameter policy) plus what `provider` drops (nothing
        known for a provider not configured here, e.g. a cached answer from another replica)."""
        adapter = self.providers.get(provider)
        return req.ignored + (adapter.dropped(req) if adapter is not None else ())

    async def open_stream(self, req: ChatRequest, key_id: str | None = None) -> OpenStream:
        async def attempt(provider: Provider, dep: Deployment) -> _Opened:
            attempt_started = time.perf_counter()
            stream = await provider.stream(req, dep)
            batches = stream.batches()
            try:
                first = await anext(batches, None)
            except BaseException:
                await stream.aclose()
                raise
            return stream, batches, first, attempt_started

        started = time.perf_counter()
        the_plan = self.plan(req, key_id)
        (stream, batches, first, attempt_started), outcome = await self._run(
            the_plan, attempt, [], stream=True, prompt_tokens=req.prompt_tokens_estimate
        )
        outcome.ignored = self.ignored(req, outcome.deployment.provider)
        batches = self._watch(outcome.deployment, batches)
        opened = OpenStream(outcome, stream, batches, first, started, attempt_started=attempt_started)
        guard = guard_for(req, the_plan.settings)
        if guard.active:
            dep = outcome.deployment
            provider = self.providers[dep.provider]
            opened.guarded = GuardedStream(provider, dep, req, guard, stream, first, batches, self._cost_today)
        return opened

    async def _watch(self, dep: Deployment, batches: AsyncIterator[_Batch]) -> AsyncIterator[_Batch]:
        """A stream's health is known at its end: one that breaks mid-way counts against its
        deployment (so a backend that always cuts streams is routed around), one that ends
        well for it."""
        try:
            async for batch in batches:
                yield batch
        except UpstreamError as exc:
            self._learn(dep, exc)
            raise
        self.state.record_health(dep.key, self.policy().defaults.breaker, True)

    def _cost_today(self, dep: Deployment, usage: Usage) -> Decimal:
        return self.cost(dep, usage, self.state.today())

    def observe_stream(
        self, dep: Deployment, ttft_ms: float | None, tokens: int, generation_s: float, *, waited_ms: float = 0.0
    ) -> None:
        """Feed a finished stream's measured timings (TTFT and generation apart) to the latency
        model. `ttft_ms` is the client's; `waited_ms` (failed attempts on other deployments and
        back-offs before the serving attempt began) is not this deployment's and is taken off."""
        if ttft_ms is not None:
            own_ttft_ms = max(ttft_ms - waited_ms, 0.0)
            self.state.observe_latency(dep.key, dep.provider, own_ttft_ms, tokens, generation_s)

    def _observe_complete(self, dep: Deployment, completion: Completion, elapsed_s: float, *, reasked: bool) -> None:
        """A non-streamed answer feeds the latency model what was measured, never an estimate:
        the provider's own TTFT/generation split when it reports one, else the total time
        (the provider's own, e.g. Bedrock's `metrics.latencyMs`, or ours) against the
        answer's length; the model separates the two across answers of different lengths.
        An answer that took re-asks spans several upstream calls, so its total says nothing
        about one call and is not observed."""
        tokens = completion.usage.completion_tokens
        if completion.reported_timing_s is not None:
            ttft_s, generation_s = completion.reported_timing_s
            self.state.observe_latency(dep.key, dep.provider, ttft_s * 1000, tokens, generation_s)
        elif not reasked:
            total_s = completion.reported_total_s if completion.reported_total_s is not None else elapsed_s
            self.state.observe_total(dep.key, dep.provider, total_s * 1000, tokens)
        self._headroom(dep, completion.ratelimit)

    def _headroom(self, dep: Deployment, limits: RateLimitState | None) -> None:
        """Stop sending to a deployment whose rate-limit window is spent, until it resets."""
        if limits is None:
            return
        if limits.remaining_requests == 0:
            self.state.cool_down(dep.key, limits.reset_requests_s)
        elif limits.remaining_tokens == 0:
            self.state.cool_down(dep.key, limits.reset_tokens_s)

    async def _run(
        self,
        the_plan: Plan,
        attempt: Callable[[Provider, Deployment], Awaitable[T]],
        records: list[AttemptRecord],
        stream: bool = False,
        prompt_tokens: int = 0,
    ) -> tuple[T, Outcome]:
        """`prompt_tokens`: the request's prompt estimate (what a cancelled hedge loser is billed)."""
        try:
            if the_plan.rejected is not None:
                raise rejected(the_plan)
            if not the_plan.candidates:
                raise no_candidates(the_plan)
            retry = the_plan.settings.retry
            try:
                async with asyncio.timeout(retry.deadline_ms / 1000):
                    return await self._attempts(the_plan, retry, records, attempt, stream, prompt_tokens)
            except TimeoutError as exc:
                self._learn_cut(the_plan, records)
                raise timed_out(the_plan, retry.deadline_ms, records) from exc
        except GatewayError as error:
            error.attempt_records = tuple(records)
            error.rule, error.arm = the_plan.rule, the_plan.split
            raise

    async def _attempts(
        self,
        the_plan: Plan,
        retry: Retry,
        records: list[AttemptRecord],
        attempt: Callable[[Provider, Deployment], Awaitable[T]],
        stream: bool,
        prompt_tokens: int,
    ) -> tuple[T, Outcome]:
        """`stream`: an opened stream is healthy only once it ends (see `_watch`); a breaker
        probe is settled at once all the same, so a probe whose stream is abandoned unread
        never keeps its deployment out."""
        failures: list[UpstreamError] = []
        breaker_config = self.policy().defaults.breaker
        candidates = the_plan.candidates
        delay_ms = the_plan.hedge.delay_ms if the_plan.hedge is not None else None
        # The first candidate's breaker is asked as the loop below would (claiming a half-open
        # probe slot); refused, the loop skips it and no hedge is run.
        if delay_ms is not None and self.state.breaker(candidates[0].deployment.key, breaker_config).allow(
            self.state.clock()
        ):
            try:
                return await self._hedged(the_plan, retry, records, attempt, stream, delay_ms, prompt_tokens)
            except UpstreamError as exc:
                self._failed(candidates[0].deployment, exc, records, failures)
                candidates = candidates[1:]
            except RaceFailed as exc:
                for index, error in exc.errors:
                    if isinstance(error, UpstreamError):
                        self._failed(candidates[index].deployment, error, records, failures)
                candidates = candidates[2:]
            if failures and failures[-1].kind.value not in retry.on and failures[-1].kind not in ALWAYS_FALL_OVER:
                raise exhausted(the_plan, failures, records)
        for candidate in candidates:
            if len(records) >= retry.attempts:
                break
            dep = candidate.deployment
            if not self.state.breaker(dep.key, breaker_config).allow(self.state.clock()):
                continue
            try:
                result = await self._on_deployment(dep, retry, records, attempt)
            except UpstreamError as exc:
                self._failed(dep, exc, records, failures)
                if exc.kind.value not in retry.on and exc.kind not in ALWAYS_FALL_OVER:
                    break
                continue
            self._settle(dep, stream)
            return result, Outcome(dep, candidate.expected_cost_usd, the_plan, records)
        raise exhausted(the_plan, failures, records)

    def _failed(
        self, dep: Deployment, exc: UpstreamError, records: list[AttemptRecord], failures: list[UpstreamError]
    ) -> None:
        failures.append(exc)
        self._learn(dep, exc)
        if exc.kind is ErrorKind.BAD_REQUEST:
            raise caller_error(exc, records) from exc

    def _settle(self, dep: Deployment, stream: bool) -> None:
        breaker_config = self.policy().defaults.breaker
        if not stream or self.state.breaker(dep.key, breaker_config).state != "closed":
            self.state.record_health(dep.key, breaker_config, True)

    async def _hedged(
        self,
        the_plan: Plan,
        retry: Retry,
        records: list[AttemptRecord],
        attempt: Callable[[Provider, Deployment], Awaitable[T]],
        stream: bool,
        delay_ms: float,
        prompt_tokens: int,
    ) -> tuple[T, Outcome]:
        """The first candidate, hedged on the second after `delay_ms` (see `gateway.dispatch.hedge`).
        The first candidate gets one try here: a slow or failed first try is what the hedge
        (or, failing that, the next candidate) is for. The hedge starts only while the
        attempt budget has room for it and its deployment's breaker lets it through."""
        first, second = the_plan.candidates[0], the_plan.candidates[1]
        breaker_config = self.policy().defaults.breaker

        def may_hedge() -> bool:
            room = len(records) + 2 <= retry.attempts
            if room and self.state.breaker(second.deployment.key, breaker_config).allow(self.state.clock()):
                self._hedge_event("started", second.deployment)
                return True
            return False

        def run(candidate: Candidate) -> Callable[[], Awaitable[T]]:
            dep = candidate.deployment
            return lambda: self._try_once(self.providers[dep.provider], dep, records, attempt)

        raced: Raced[T] = await self.racer.race(run(first), run(second), delay_ms / 1000, may_hedge, dispose)
        for index, error in raced.errors:
            if isinstance(error, UpstreamError):
                self._learn((first, second)[index].deployment, error)
        won = (first, second)[raced.winner]
        self._settle(won.deployment, stream)
        outcome = Outcome(won.deployment, won.expected_cost_usd, the_plan, records)
        if raced.hedged:
            lost = (second, first)[raced.winner]
            outcome.hedge_winner = ("first", "hedge")[raced.winner]
            self._hedge_event("won", won.deployment)
            cancelled = raced.cancelled or raced.loser_result is not None
            answer = raced.loser_result
            mark_race(
                records, lost.deployment, won.deployment, answer, prompt_tokens, self._cost_today, cancelled=cancelled
            )
            if cancelled:
                self._hedge_event("cancelled", lost.deployment)
                if self.state.breaker(lost.deployment.key, breaker_config).state == "half_open":
                    # A breaker probe that lost the race settles as failed (slower than the
                    # alternative), so its deployment is re-probed after the cooldown rather
                    # than kept out by a probe that never reports back.
                    self.state.record_health(lost.deployment.key, breaker_config, False)
        return raced.result, outcome

    def _hedge_event(self, event: str, dep: Deployment) -> None:
        if self.on_hedge is not None:
            self.on_hedge(event, dep)

    async def _on_deployment(
        self,
        dep: Deployment,
        retry: Retry,
        records: list[AttemptRecord],
        attempt: Callable[[Provider, Deployment], Awaitable[T]],
    ) -> T:
        """Serve on one deployment, retrying transient faults there. The first try runs
        without the retry machinery (nearly every request succeeds on it); tenacity takes
        over only once a retry is actually needed."""
        provider = self.providers[dep.provider]
        tries = max(1, min(retry.tries_per_deployment, retry.attempts - len(records)))

        def transient(exc: BaseException) -> bool:
            return isinstance(exc, UpstreamError) and exc.retry_same and exc.kind.value in retry.on

        try:
            return await self._try_once(provider, dep, records, attempt)
        except UpstreamError as exc:
            if tries == 1 or not transient(exc):
                raise
        await self.sleep(FIRST_RETRY_WAIT_S)
        async for trial in AsyncRetrying(
            stop=stop_after_attempt(tries - 1),
            wait=wait_exponential_jitter(multiplier=FIRST_RETRY_WAIT_S * 2, max=0.5, jitter=FIRST_RETRY_WAIT_S),
            retry=retry_if_exception(transient),
            sleep=self.sleep,
            reraise=True,
        ):
            with trial:
                return await self._try_once(provider, dep, records, attempt)
        raise AssertionError("unreachable: tenacity re-raises the last error")

    async def _try_once(
        self,
        provider: Provider,
        dep: Deployment,
        records: list[AttemptRecord],
        attempt: Callable[[Provider, Deployment], Awaitable[T]],
    ) -> T:
        started = time.perf_counter()
        span = attempt_span(self.tracer, dep.provider, dep.model_id, len(records) + 1)
        if self.on_wait is not None:
            self.on_wait()
        try:
            result = await attempt(provider, dep)
        except UpstreamError as exc:
            if exc.kind is not ErrorKind.TOOL_CALLS_INVALID:  # those answers are recorded, billed, as they come
                records.append(_record(dep, exc, started))
            fail_span(span, exc.kind.value, exc.message)
            raise
        except asyncio.CancelledError:
            # The request's deadline (or its client) ended the attempt: the backend saw the
            # request, so the error and the ledger name it like any other attempt.
            cut = UpstreamError(ErrorKind.TIMEOUT, CANCELLED, provider=dep.provider, code="cancelled")
            records.append(_record(dep, cut, started))
            fail_span(span, cut.kind.value, cut.message)
            raise
        records.append(_record(dep, None, started))
        if isinstance(result, Completion) and span.is_recording():
            span.set_attributes(
                {INPUT_TOKENS: result.usage.prompt_tokens, OUTPUT_TOKENS: result.usage.completion_tokens}
            )
        span.end()
        return result

    def _learn_cut(self, the_plan: Plan, records: list[AttemptRecord]) -> None:
        """The deadline cut the attempt in flight: a timeout against its deployment like any
        other (a backend that hangs past every deadline must trip its breaker, and a cut
        breaker probe must not keep its deployment out for good)."""
        last = records[-1] if records else None
        if last is None or last.message != CANCELLED:
            return
        for candidate in the_plan.candidates:
            dep = candidate.deployment
            if (dep.provider, dep.model_id) == (last.provider, last.model_id):
                self._learn(dep, UpstreamError(ErrorKind.TIMEOUT, CANCELLED, provider=dep.provider))
                return

    def _learn(self, dep: Deployment, exc: UpstreamError) -> None:
        if exc.kind in HEALTH_FAILURES:
            self.state.record_health(dep.key, self.policy().defaults.breaker, False)
        if exc.kind is ErrorKind.RATE_LIMITED:
            self.state.cool_down(dep.key, exc.retry_after)
        elif exc.kind is ErrorKind.UNSUPPORTED and exc.param is not None:
            self.state.capability_miss(dep.key, exc.param)
        elif exc.kind is ErrorKind.MODEL_GONE:
            self.state.take_out(dep.key, f"{dep.provider} said the model is gone: {exc.message}")


def _record(dep: Deployment, exc: UpstreamError | None, started: float) -> AttemptRecord:
    latency = (time.perf_counter() - started) * 1000
    if exc is None:
        return AttemptRecord(dep.provider, dep.model_id, None, 200, latency)
    return AttemptRecord(dep.provider, dep.model_id, exc.kind.value, exc.status, latency, exc.message)


__all__ = ["Dispatcher", "GatewayError", "OpenStream", "Outcome", "attempts_extra"]
