"""GET /metrics in Prometheus format.

Request, token, cost and attempt counters are fed from usage events, drained in the
background (and at every scrape) rather than updated on the request path. Live routing
state — breakers, cooldowns, pool replicas, ledger queue — is read at scrape time by a
custom collector.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.catalogue.drift import Drift
from gateway.metering.events import UsageEvent
from gateway.telemetry import multiproc
from gateway.telemetry.outcomes import Ended
from gateway.telemetry.refusals import Refusals

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
#: Time-to-first-token edges: every common SLO value (100, 200, 250, 300, 500, 750 ms, 1, 1.5,
#: 2, 3 s) is an edge, so "share under the SLO" is read off a bucket, not interpolated.
TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 5, 10, 30, 60)
#: Corral's own share of a request's time is sub-millisecond when all is well.
ADDED_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)
BREAKER_VALUES = {"closed": 0.0, "open": 1.0, "half_open": 2.0}
#: Refusals and failures remembered for /status.
RECENT_KEPT = 10_000
#: How often the request path's appended events are folded in, and how many per slice
#: (a slice costs well under a millisecond; the loop runs other callbacks between slices).
DRAIN_INTERVAL_S = 0.1
DRAIN_SLICE = 16
#: Usage events pending at which a request's wait on its upstream is used to drain a slice
#: (fewer wait for the tick: a drain has fixed costs, worth paying for several events).
WAIT_SLICE = 8
LEDGER_QUEUE = ("corral_ledger_queue_depth", "Usage events waiting for the ledger writer")
JOURNAL_BYTES = ("corral_ledger_journal_bytes", "Bytes of usage journaled but not yet confirmed in the ledger")


@dataclass(frozen=True, slots=True)
class LiveGauges:
    """Read-only views of live state, called at scrape time."""

    breakers: Callable[[], Iterable[tuple[str, str]]]
    cooldowns: Callable[[], Iterable[tuple[str, float]]]
    pool: Callable[[], Iterable[tuple[str, bool, int, int, float]]]
    ledger_queue: Callable[[], int]
    journal_bytes: Callable[[], int]
    policy_reloads: Callable[[], tuple[int, int]]
    #: (kind, subject, period, fraction used) per budget.
    budgets: Callable[[], Iterable[tuple[str, str, str, float]]] = lambda: ()
    #: (deployment, feature, seconds until offered again) per feature a deployment refused.
    capability_misses: Callable[[], Iterable[tuple[str, str, float]]] = lambda: ()
    #: Deployments out of rotation (the provider said the model is gone, or stopped listing it).
    out_of_rotation: Callable[[], Iterable[str]] = lambda: ()
    #: Tool-call validations sent to a validation process so far, and those it stopped.
    fence_runs: Callable[[], tuple[int, int]] = lambda: (0, 0)


class _LiveCollector(Collector):
    def __init__(self, live: LiveGauges, backlog: bool = True) -> None:
        self.live = live
        #: False with several workers: the backlog is then a gauge summed over the workers.
        self.backlog = backlog

    def collect(self) -> Iterator[Metric]:
        breaker = GaugeMetricFamily(
            "corral_breaker_state",
            "Circuit breaker per deployment (0 closed, 1 open, 2 half-open)",
            labels=["deployment"],
        )
        for key, state in self.live.breakers():
            breaker.add_metric([key], BREAKER_VALUES.get(state, 0.0))
        yield breaker
        cooldown = GaugeMetricFamily(
            "corral_ratelimit_cooldown_seconds",
            "Seconds left before a rate-limited deployment is tried again",
            labels=["deployment"],
        )
        for key, remaining in self.live.cooldowns():
            cooldown.add_metric([key], remaining)
        yield cooldown
        misses = GaugeMetricFamily(
            "corral_capability_miss_seconds",
            "Seconds before a deployment that refused a feature as unsupported is offered it again",
            labels=["deployment", "feature"],
        )
        for key, feature, remaining in self.live.capability_misses():
            misses.add_metric([key, feature], remaining)
        yield misses
        out = GaugeMetricFamily(
            "corral_deployment_out_of_rotation",
            "1 for a deployment taken out of rotation (its model is gone from the provider)",
            labels=["deployment"],
        )
        for key in self.live.out_of_rotation():
            out.add_metric([key], 1.0)
        yield out
        yield from self._pool()
        if self.backlog:
            yield GaugeMetricFamily(LEDGER_QUEUE[0], LEDGER_QUEUE[1], value=self.live.ledger_queue())
            yield GaugeMetricFamily(JOURNAL_BYTES[0], JOURNAL_BYTES[1], value=self.live.journal_bytes())
        used = GaugeMetricFamily(
            "corral_budget_used_ratio",
            "Share of each spend budget used this period",
            labels=["kind", "subject", "period"],
        )
        for kind, subject, period, ratio in self.live.budgets():
            used.add_metric([kind, subject, period], ratio)
        yield used
        ok, refused = self.live.policy_reloads()
        reloads = GaugeMetricFamily("corral_policy_reloads", "Policy reloads since start", labels=["result"])
        reloads.add_metric(["applied"], ok)
        reloads.add_metric(["refused"], refused)
        yield reloads

    def _pool(self) -> Iterator[Metric]:
        healthy = GaugeMetricFamily(
            "corral_pool_replica_healthy", "vLLM replica health (1 healthy)", labels=["replica"]
        )
        running = GaugeMetricFamily(
            "corral_pool_replica_running", "Requests running on a vLLM replica", labels=["replica"]
        )
        waiting = GaugeMetricFamily(
            "corral_pool_replica_waiting", "Requests queued on a vLLM replica", labels=["replica"]
        )
        kv = GaugeMetricFamily(
            "corral_pool_replica_kv_cache_usage", "KV-cache usage of a vLLM replica (0-1)", labels=["replica"]
        )
        for url, is_healthy, run, wait, kv_usage in self.live.pool():
            healthy.add_metric([url], 1.0 if is_healthy else 0.0)
            running.add_metric([url], run)
            waiting.add_metric([url], wait)
            kv.add_metric([url], kv_usage)
        yield from (healthy, running, waiting, kv)


class Metrics:
    """The gateway's registry; `record` is the usage-sink hook (an append, nothing more)."""

    def __init__(self, live: LiveGauges | None = None, also_drain: Callable[[int | None], bool] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "corral_requests",
            "Chat requests, each counted once by how it ended (see gateway.telemetry.outcomes)",
            list(Ended._fields),
            registry=r,
        )
        self.latency = Histogram(
            "corral_request_duration_seconds",
            "Whole request time in the gateway",
            ["model", "provider"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.added = Histogram(
            "corral_added_latency_seconds",
            "Time Corral added to a whole (non-streamed) answer: the request's time in the gateway "
            "less the time its upstream attempts took",
            ["provider"],
            buckets=ADDED_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "corral_time_to_first_token_seconds",
            "Time to the client's first token; how: stream (first content chunk measured) or "
            "whole_answer (non-streamed: the first token arrives with the whole answer)",
            ["model", "provider", "how"],
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "corral_tokens", "Tokens by provider and model", ["provider", "model", "kind"], registry=r
        )
        self.cost = Counter("corral_cost_usd", "Spend in USD by provider and model", ["provider", "model"], registry=r)
        self.attempts = Counter(
            "corral_upstream_attempts", "Upstream attempts by outcome", ["provider", "outcome"], registry=r
        )
        self.tool_failures = Counter(
            "corral_tool_call_failures",
            "Invalid tool-call answers by deployment and failure kind",
            ["provider", "model", "kind"],
            registry=r,
        )
        self.tool_validation = Counter(
            "corral_tool_validation", "Tool-call validation outcomes", ["provider", "outcome"], registry=r
        )
        self.hedges = Counter(
            "corral_hedges",
            "Hedged requests by deployment and event: started (the hedge attempt began on this "
            "deployment), won (this deployment answered a raced request), cancelled (this "
            "deployment's attempt lost the race and was cancelled)",
            ["provider", "model", "event"],
            registry=r,
        )
        self.fenced = Counter(
            "corral_tool_validation_offloaded",
            "Tool-call validations too costly for the event loop, run in a validation process "
            "under a CPU budget; event: started, or stopped (by the budget, or the process ended)",
            ["event"],
            registry=r,
        )
        self._fence_seen = (0, 0)
        #: Requests refused by authentication and by the keys' own limits (counted at once).
        self.refusals = Refusals(r)
        self.drift = Gauge(
            "corral_catalogue_drift",
            "Findings of the last catalogue check (gone, new, due, unknown)",
            ["finding"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        #: With several workers (see gateway.telemetry.multiproc): the shared directory,
        #: the registry a scrape reads (every worker's files), and the backlog gauges each
        #: worker sets on its drain tick, summed over the live workers.
        self._multiproc = multiproc.directory()
        self._backlog: tuple[Gauge, Gauge] | None = None
        self._scraped = r
        if self._multiproc is not None:
            self._scraped = multiproc.registry(self._multiproc)
            self._backlog = (
                Gauge(*LEDGER_QUEUE, registry=r, multiprocess_mode="livesum"),
                Gauge(*JOURNAL_BYTES, registry=r, multiprocess_mode="livesum"),
            )
        self._live = live
        if live is not None:
            self._scraped.register(_LiveCollector(live, backlog=self._backlog is None))
        self._pending: deque[UsageEvent] = deque()
        self._ended: deque[Ended] = deque()
        self._hedges: deque[tuple[str, str, str]] = deque()
        #: Requests not served, newest last (when drained, outcome, reason), for /status.
        self._recent: deque[tuple[float, str, str]] = deque(maxlen=RECENT_KEPT)
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self._task: asyncio.Task[None] | None = None
        #: The loop's call_soon, once started; and whether a drain on a wait is already due.
        self._call_soon: Callable[..., object] | None = None
        self._drain_due = False
        #: Another off-path consumer drained on the same tick (the access log).
        self._also_drain = also_drain

    def recent_refusals(self, window_s: float) -> dict[tuple[str, str], int]:
        """Requests not served in the last `window_s` seconds, by outcome and reason (this
        process's; at most the last `RECENT_KEPT`)."""
        self.drain()
        since = time.monotonic() - window_s
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for at, outcome, reason in self._recent:
            if at >= since:
                counts[outcome, reason] += 1
        return dict(counts)

    def catalogue_checked(self, drift: Drift) -> None:
        for finding, count in (
            ("gone", len(drift.gone)),
            ("new", sum(len(ids) for ids in drift.new.values())),
            ("due", len(drift.due)),
            ("unknown", len(drift.unknown)),
        ):
            self.drift.labels(finding).set(count)

    def record(self, event: UsageEvent) -> None:
        self._pending.append(event)

    def hedge(self, event: str, provider: str, model_id: str) -> None:
        """A hedge event (started, won, cancelled) on a deployment (an append; counted at the next drain)."""
        self._hedges.append((provider, model_id, event))

    def ended(self, request: Ended) -> None:
        """One client request finished (an append; counted at the next drain)."""
        self._ended.append(request)

    def drain(self, limit: int | None = None) -> bool:
        """Fold pending events into the metrics: counters once per label set per drain
        (summed), histograms once per event. With `limit`, at most that many usage events
        and as many ended requests; True when some are left for the next slice."""
        totals: dict[tuple[Counter, tuple[str, ...]], float] = defaultdict(float)
        budget = len(self._pending) if limit is None else min(limit, len(self._pending))
        for _ in range(budget):
            self._count(self._pending.popleft(), totals)
        now = time.monotonic()
        budget = len(self._ended) if limit is None else min(limit, len(self._ended))
        for _ in range(budget):
            ended = self._ended.popleft()
            totals[self.requests, tuple(ended)] += 1
            if ended.outcome != "served":
                self._recent.append((now, ended.outcome, ended.reason))
        while self._hedges:
            totals[self.hedges, self._hedges.popleft()] += 1
        for (counter, labels), amount in totals.items():
            self._child(counter, labels).inc(amount)
        if self._live is not None:
            self._fold_fence_runs(self._live.fence_runs())
        if self._backlog is not None and self._live is not None:
            self._backlog[0].set(self._live.ledger_queue())
            self._backlog[1].set(self._live.journal_bytes())
        more = self._also_drain(limit) if self._also_drain is not None else False
        return more or bool(self._pending) or bool(self._ended)

    def _child(self, metric: Counter | Histogram, labels: tuple[str, ...]) -> Any:
        """The labelled child, cached (prometheus-client's own lookup takes a lock and
        rebuilds the key on every call)."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def _count(self, e: UsageEvent, totals: dict[tuple[Counter, tuple[str, ...]], float]) -> None:
        provider = e.provider or "none"
        self._child(self.latency, (e.model, provider)).observe(e.latency_ms / 1000)
        if e.provider and e.attempts and not e.stream:
            upstream_ms = sum(a.latency_ms for a in e.attempts)
            self._child(self.added, (provider,)).observe(max(0.0, e.latency_ms - upstream_ms) / 1000)
        if e.stream:
            if e.ttft_ms is not None:
                self._child(self.ttft, (e.model, provider, "stream")).observe(e.ttft_ms / 1000)
        elif e.status == "ok":
            self._child(self.ttft, (e.model, provider, "whole_answer")).observe(e.latency_ms / 1000)
        if e.provider:
            totals[self.tokens, (provider, e.model, "prompt")] += e.prompt_tokens
            totals[self.tokens, (provider, e.model, "completion")] += e.completion_tokens
            totals[self.cost, (provider, e.model)] += float(e.cost_usd)
        for attempt in e.attempts:
            totals[self.attempts, (attempt.provider, attempt.error_kind or "ok")] += 1
            for kind in attempt.failure_kinds:
                totals[self.tool_failures, (attempt.provider, attempt.model_id, kind)] += 1
        if e.tool_validation:
            totals[self.tool_validation, (provider, e.tool_validation)] += 1

    def _fold_fence_runs(self, runs: tuple[int, int]) -> None:
        """The fence keeps plain running totals; the counters get what was added since the
        last drain (a counter, so that several workers' totals add up)."""
        seen, self._fence_seen = self._fence_seen, runs
        for event, now, before in (("started", runs[0], seen[0]), ("stopped", runs[1], seen[1])):
            if now > before:
                self._child(self.fenced, (event,)).inc(now - before)

    def exposition(self) -> bytes:
        self.drain()
        if self._multiproc is not None:
            multiproc.sweep_dead(self._multiproc)
        return generate_latest(self._scraped)

    async def run(self, interval_s: float = DRAIN_INTERVAL_S) -> None:
        """Drain often and in slices, yielding to the loop between them: one drain of a
        second's worth of events held the loop for ~10 ms under load (`make bench`'s p99.9)."""
        while True:
            more = self.drain(DRAIN_SLICE)
            await asyncio.sleep(0 if more else interval_s)

    def waiting(self) -> None:
        """A request is about to wait on its upstream, the loop free meanwhile. When a
        slice's worth of events is pending, drain it on the loop's next turn rather than at
        the next tick, when it would as likely hold up a request being served: at one
        connection the loop is otherwise idle for the upstream's whole turn. (The HTTP/1.1
        client writes a request on a pooled connection before it first waits, so the slice
        runs while the answer is on its way; on a new connection, while it connects.)"""
        if len(self._pending) >= WAIT_SLICE and not self._drain_due and self._call_soon is not None:
            self._drain_due = True
            self._call_soon(self._drain_on_wait)

    def _drain_on_wait(self) -> None:
        self._drain_due = False
        self.drain(DRAIN_SLICE)

    def start(self) -> None:
        self._call_soon = asyncio.get_running_loop().call_soon
        self._task = asyncio.create_task(self.run(), name="corral-metrics")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.drain()
        if self._multiproc is not None:
            multiproc.stopped(self._multiproc)
