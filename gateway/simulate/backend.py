"""A simulated backend: answers in virtual time from a latency/error profile."""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from gateway.catalogue.deployments import Deployment
from gateway.config import ProviderConfig
from gateway.providers.base import Completion, Provider, UpstreamStream
from gateway.providers.errors import ErrorKind, UpstreamError
from gateway.schema.chat import ChatRequest
from gateway.schema.usage import Usage
from gateway.simulate.scenario import Profile

#: Extra time to first token per request waiting in the pool.
POOL_WAIT_S = 0.05


@dataclass
class Clock:
    """Virtual time: the simulator sets `now` to each request's arrival."""

    now: float = 0.0
    #: Time the current request has spent on failed attempts and back-offs.
    spent_s: float = 0.0


@dataclass
class SimBackend(Provider):
    name: str
    profile: Profile
    clock: Clock
    rng: random.Random
    #: The output length the trace says the current request will produce.
    output_tokens: int = 0
    #: (start, end) of pool requests, for queue depth (pool only).
    busy: list[tuple[float, float]] = field(default_factory=list)
    last_ttft_s: float = 0.0
    last_generation_s: float = 0.0
    #: This request's TTFT on this backend before any pool queueing, drawn once per request by
    #: the runner so the hindsight oracle judges the very answer the policy would have got.
    drawn_ttft_s: float = 0.0
    #: The self-hosted pool: requests queue once its replicas' batches are full.
    pooled: bool = False

    def __post_init__(self) -> None:
        super().__init__(ProviderConfig(name=self.name, simulated=True))

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def queue_depth(self, t: float) -> tuple[int, int]:
        """(running, waiting) at virtual time t."""
        self.busy = [(s, e) for s, e in self.busy if e > t]
        active = len(self.busy)
        capacity = self.profile.max_num_seqs * self.profile.replicas
        return min(active, capacity), max(0, active - capacity)

    def draw(self) -> None:
        """Draw this request's TTFT (log-normal around the profile's, times the tail factor
        for the profile's tail share of answers)."""
        self.drawn_ttft_s = self.profile.ttft_ms / 1000 * math.exp(self.rng.gauss(0, self.profile.ttft_sigma))
        if self.profile.tail_share and self.rng.random() < self.profile.tail_share:
            self.drawn_ttft_s *= self.profile.tail_factor

    def answer_ttft_s(self, t: float) -> float:
        """The drawn TTFT, plus the pool's queueing at virtual time t."""
        if not self.pooled:
            return self.drawn_ttft_s
        _, waiting = self.queue_depth(t)
        return self.drawn_ttft_s + waiting * POOL_WAIT_S

    def _answer(self, t: float) -> tuple[float, float]:
        """(TTFT, generation) in seconds of one attempt at virtual time t, or the incident's
        or random error; the pool's batch is occupied for the answer's duration."""
        incident = self.profile.incident_at(t)
        if incident is not None:
            self.clock.spent_s += incident.cost_s
            raise UpstreamError(
                incident.kind,
                f"simulated {incident.kind.value}",
                provider=self.name,
                retry_after=incident.retry_after_s,
            )
        if self.rng.random() < self.profile.error_rate:
            self.clock.spent_s += 0.2
            raise UpstreamError(ErrorKind.UPSTREAM_5XX, "simulated 500", provider=self.name, status=500)
        ttft_s = self.answer_ttft_s(t)
        generation_s = self.output_tokens / self.profile.tokens_per_s
        if self.pooled:
            self.busy.append((t, t + ttft_s + generation_s))
        self.last_ttft_s = ttft_s
        self.last_generation_s = generation_s
        return ttft_s, generation_s

    async def complete(self, request: ChatRequest, deployment: Deployment) -> Completion:
        ttft_s, generation_s = self._answer(self.clock.now + self.clock.spent_s)
        self.clock.spent_s += ttft_s + generation_s  # the answer takes its time, in virtual time
        usage = Usage(request.prompt_tokens_estimate, self.output_tokens)
        body = {"id": "sim", "object": "chat.completion", "choices": [], "usage": usage.to_openai()}
        timing = (ttft_s, generation_s) if self.profile.reports_timing else None
        return Completion(body=body, usage=usage, reported_timing_s=timing)

    async def stream(self, request: ChatRequest, deployment: Deployment) -> UpstreamStream:
        """A streamed answer: the first chunk arrives after its TTFT (the clock is advanced to
        it when the stream opens), the rest after the generation time (when it is read)."""
        ttft_s, generation_s = self._answer(self.clock.now + self.clock.spent_s)
        self.clock.spent_s += ttft_s
        return SimStream(self.clock, generation_s, Usage(request.prompt_tokens_estimate, self.output_tokens))


@dataclass
class SimStream(UpstreamStream):
    clock: Clock
    generation_s: float
    total: Usage

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        yield {"id": "sim", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "…"}}]}
        self.clock.spent_s += self.generation_s
        self.usage = self.total
        self.finish_reason = "stop"

    async def aclose(self) -> None:
        return None
