"""The one loop that turns a plan into an answer: try each deployment in order,
retry transient faults on the same deployment (tenacity), fall over on errors another
backend could survive, and stop at once on errors that are the caller's."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from gateway.errors import GatewayError
from gateway.metering.events import AttemptRecord
from gateway.pricing import PriceBook
from gateway.providers.base import Completion, Provider, UpstreamStream
from gateway.providers.errors import ErrorKind, UpstreamError
from gateway.routing.catalogue import Catalogue, Deployment
from gateway.routing.planner import Plan, plan
from gateway.schema.chat import ChatRequest
from gateway.schema.usage import Usage
from gateway.state import LiveState

T = TypeVar("T")
_Opened = tuple[UpstreamStream, AsyncIterator[dict[str, Any]], dict[str, Any] | None]
#: Tries per deployment for transient faults (timeouts, 5xx, dropped connections).
TRIES_PER_DEPLOYMENT = 2


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, UpstreamError) and exc.retry_same


@dataclass(slots=True)
class Outcome:
    """Which deployment served the request, and every attempt on the way."""

    deployment: Deployment
    expected_cost_usd: Decimal
    attempts: list[AttemptRecord] = field(default_factory=list)


@dataclass(slots=True)
class OpenStream:
    outcome: Outcome
    stream: UpstreamStream
    chunks: AsyncIterator[dict[str, Any]]
    #: Read before committing to this deployment, so a stream that fails at once can still fall over.
    first: dict[str, Any] | None


class Dispatcher:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        catalogue: Catalogue,
        prices: PriceBook,
        state: LiveState,
    ) -> None:
        self.providers = providers
        self.catalogue = catalogue
        self.prices = prices
        self.state = state
        state.available = frozenset(providers)

    def plan(self, req: ChatRequest) -> Plan:
        return plan(req, self.catalogue.deployments(req.model), self.prices, self.state.view(), self._refusal)

    def _refusal(self, req: ChatRequest, dep: Deployment) -> str | None:
        return self.providers[dep.provider].unsupported(req, dep)

    def cost(self, dep: Deployment, usage: Usage, when: date) -> Decimal:
        price = self.prices.at(dep.provider, dep.model, when)
        return price.cost(usage) if price is not None else Decimal(0)

    async def complete(self, req: ChatRequest) -> tuple[Completion, Outcome]:
        async def attempt(provider: Provider, dep: Deployment) -> Completion:
            return await provider.complete(req, dep)

        return await self._run(req, attempt)

    async def open_stream(self, req: ChatRequest) -> OpenStream:
        async def attempt(provider: Provider, dep: Deployment) -> _Opened:
            stream = await provider.stream(req, dep)
            chunks = aiter(stream)
            try:
                first = await anext(chunks, None)
            except BaseException:
                await stream.aclose()
                raise
            return stream, chunks, first

        (stream, chunks, first), outcome = await self._run(req, attempt)
        return OpenStream(outcome, stream, chunks, first)

    async def _run(
        self, req: ChatRequest, attempt: Callable[[Provider, Deployment], Awaitable[T]]
    ) -> tuple[T, Outcome]:
        the_plan = self.plan(req)
        if not the_plan.candidates:
            raise no_candidates(the_plan)
        records: list[AttemptRecord] = []
        failures: list[UpstreamError] = []
        for candidate in the_plan.candidates:
            dep = candidate.deployment
            provider = self.providers[dep.provider]
            try:
                async for retry in AsyncRetrying(
                    stop=stop_after_attempt(TRIES_PER_DEPLOYMENT),
                    wait=wait_exponential_jitter(initial=0.05, max=0.5),
                    retry=retry_if_exception(_is_transient),
                    reraise=True,
                ):
                    with retry:
                        started = time.perf_counter()
                        try:
                            result = await attempt(provider, dep)
                        except UpstreamError as exc:
                            records.append(_record(dep, exc, started))
                            raise
                        records.append(_record(dep, None, started))
                        return result, Outcome(dep, candidate.expected_cost_usd, records)
            except UpstreamError as exc:
                failures.append(exc)
                self._learn(dep, exc)
                if not exc.fall_over:
                    raise caller_error(exc, records) from exc
        raise exhausted(failures, records)

    def _learn(self, dep: Deployment, exc: UpstreamError) -> None:
        if exc.kind is ErrorKind.RATE_LIMITED:
            self.state.cool_down(dep.key, exc.retry_after)
        elif exc.kind is ErrorKind.MODEL_GONE:
            self.state.take_out(dep.key, f"{dep.provider} said the model is gone: {exc.message}")


def _record(dep: Deployment, exc: UpstreamError | None, started: float) -> AttemptRecord:
    latency = (time.perf_counter() - started) * 1000
    if exc is None:
        return AttemptRecord(dep.provider, dep.model_id, None, 200, latency)
    return AttemptRecord(dep.provider, dep.model_id, exc.kind.value, exc.status, latency, exc.message)


def _attempts_extra(records: list[AttemptRecord]) -> dict[str, Any]:
    return {
        "attempts": [
            {
                "provider": r.provider,
                "model_id": r.model_id,
                "kind": r.error_kind,
                "status": r.status,
                "message": r.message,
            }
            for r in records
        ]
    }


def no_candidates(the_plan: Plan) -> GatewayError:
    dropped = [{"provider": d.deployment.provider, "reason": d.reason} for d in the_plan.dropped]
    extra = {"dropped": dropped}
    cooling = [d.retry_after_s for d in the_plan.dropped if d.retry_after_s is not None]
    relevant_count = sum(1 for d in the_plan.dropped if d.reason != "provider not configured")
    if cooling and len(cooling) == relevant_count:
        wait = max(1, round(min(cooling)))
        return GatewayError(
            429,
            f"every deployment of {the_plan.model} is rate-limited; retry in {wait}s",
            type="rate_limit_error",
            code="rate_limit_exceeded",
            headers={"retry-after": str(wait)},
            extra=extra,
        )
    relevant = [d.reason for d in the_plan.dropped if d.reason != "provider not configured"]
    if relevant and all(r.startswith("context window") for r in relevant):
        return GatewayError(
            400,
            f"the prompt is too long for every deployment of {the_plan.model}",
            code="context_length_exceeded",
            param="messages",
            extra=extra,
        )
    reasons = "; ".join(f"{d['provider']}: {d['reason']}" for d in dropped)
    return GatewayError(
        503,
        f"no deployment of {the_plan.model} can serve this request ({reasons})",
        type="upstream_error",
        code="no_deployment_available",
        extra=extra,
    )


def caller_error(exc: UpstreamError, records: list[AttemptRecord]) -> GatewayError:
    return GatewayError(
        400,
        f"{exc.provider} rejected the request: {exc.message}",
        param=exc.param,
        code="invalid_value",
        extra=_attempts_extra(records),
    )


def exhausted(failures: list[UpstreamError], records: list[AttemptRecord]) -> GatewayError:
    kinds = {f.kind for f in failures}
    tried = ", ".join(dict.fromkeys(f.provider for f in failures))
    extra = _attempts_extra(records)
    if kinds == {ErrorKind.RATE_LIMITED}:
        waits = [f.retry_after for f in failures if f.retry_after is not None]
        wait = max(1, round(min(waits))) if waits else 5
        return GatewayError(
            429,
            f"every backend tried is rate-limiting ({tried}); retry in {wait}s",
            type="rate_limit_error",
            code="rate_limit_exceeded",
            headers={"retry-after": str(wait)},
            extra=extra,
        )
    if kinds == {ErrorKind.CONTEXT_TOO_LONG}:
        return GatewayError(
            400,
            f"the prompt is too long for every backend tried ({tried})",
            code="context_length_exceeded",
            param="messages",
            extra=extra,
        )
    if failures and failures[-1].kind is ErrorKind.TIMEOUT:
        return GatewayError(
            504, f"upstream timed out after trying {tried}", type="upstream_error", code="upstream_timeout", extra=extra
        )
    if kinds <= {ErrorKind.OVERLOADED, ErrorKind.CONNECTION, ErrorKind.RATE_LIMITED}:
        return GatewayError(
            503,
            f"no backend could take the request ({tried})",
            type="upstream_error",
            code="upstream_unavailable",
            extra=extra,
        )
    return GatewayError(
        502, f"every backend failed ({tried})", type="upstream_error", code="upstream_failed", extra=extra
    )
