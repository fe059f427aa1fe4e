"""Metrics and access lines are folded in slices off the request path, so a burst of
requests never holds the event loop for one long drain (the p99.9 stall `make bench` saw)."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from prometheus_client import generate_latest

from gateway.catalogue.deployments import load_catalogue
from gateway.catalogue.prices import load_price_book
from gateway.dispatch.loop import Dispatcher
from gateway.live.state import LiveState
from gateway.providers.base import Completion
from gateway.schema.chat import ChatRequest, CorralPrefs
from gateway.schema.usage import Usage
from gateway.telemetry import metrics as metrics_module
from gateway.telemetry.logs import AccessLog
from gateway.telemetry.metrics import DRAIN_SLICE, WAIT_SLICE, Metrics
from tests.metering.factory import event


def _served(metrics: Metrics) -> float:
    value = metrics.registry.get_sample_value(
        "corral_tokens_total", {"provider": "groq", "model": "llama-4-scout", "kind": "prompt"}
    )
    return value or 0.0


def test_a_slice_folds_at_most_its_limit_and_says_more_is_left() -> None:
    metrics = Metrics()
    for n in range(DRAIN_SLICE * 2 + 5):
        metrics.record(event(f"r{n}"))
    assert metrics.drain(DRAIN_SLICE) is True
    assert _served(metrics) == DRAIN_SLICE * 1000
    assert metrics.drain(DRAIN_SLICE) is True
    assert metrics.drain(DRAIN_SLICE) is False
    assert _served(metrics) == (DRAIN_SLICE * 2 + 5) * 1000
    assert b"corral_tokens_total" in generate_latest(metrics.registry)


def test_access_log_drains_in_slices(caplog: pytest.LogCaptureFixture) -> None:
    log = AccessLog()
    with caplog.at_level(logging.INFO, logger="corral.access"):
        for n in range(10):
            log.record(event(f"r{n}"))
        assert log.drain(4) is True
        assert len(caplog.records) == 4
        assert log.drain(None) is False
        assert len(caplog.records) == 10


def test_the_drain_task_lets_other_callbacks_run_between_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    """5,000 pending events (several seconds of traffic): the drain task finishes them, and
    a ticker scheduled meanwhile is never held up for the whole drain at once."""
    monkeypatch.setattr(metrics_module, "DRAIN_INTERVAL_S", 0.01)

    async def scenario() -> tuple[float, float, int]:
        access = AccessLog()
        metrics = Metrics(also_drain=access.drain)
        for n in range(5000):
            metrics.record(event(f"r{n}"))
        start = time.perf_counter()
        metrics.drain(None)  # the whole backlog in one go, for comparison
        whole = time.perf_counter() - start
        for n in range(5000):
            metrics.record(event(f"s{n}"))
        task = asyncio.create_task(metrics.run(0.01))
        gaps: list[float] = []
        last = time.perf_counter()
        while metrics._pending:
            await asyncio.sleep(0)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now
        task.cancel()
        return whole, max(gaps), len(gaps)

    whole, longest_gap, turns = asyncio.run(scenario())
    assert turns > 5000 // DRAIN_SLICE // 2, "the drain ran in slices, with the loop turning between them"
    assert longest_gap < whole / 4, (longest_gap, whole)


def test_a_request_waiting_on_its_upstream_drains_a_slice_on_the_next_turn() -> None:
    """`waiting` (the dispatcher calls it as an attempt goes upstream): with a slice's worth
    of events pending, they are folded on the loop's next turn, not at the next tick (an
    hour away here); with fewer pending, nothing is scheduled."""

    async def scenario() -> tuple[float, float, float]:
        metrics = Metrics()
        metrics._call_soon = asyncio.get_running_loop().call_soon
        for n in range(WAIT_SLICE - 1):
            metrics.record(event(f"r{n}"))
        metrics.waiting()
        await asyncio.sleep(0)
        too_few = _served(metrics)
        metrics.record(event("last"))
        metrics.waiting()
        metrics.waiting()  # one drain scheduled, however many requests go upstream meanwhile
        before_the_turn = _served(metrics)
        await asyncio.sleep(0)
        return too_few, before_the_turn, _served(metrics)

    too_few, before_the_turn, after = asyncio.run(scenario())
    assert too_few == 0 and before_the_turn == 0
    assert after == WAIT_SLICE * 1000


class _Upstream:
    """The least a provider is to the dispatcher: it supports everything and answers."""

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def unsupported(self, req: ChatRequest, dep: object) -> None:
        return None

    def dropped(self, req: ChatRequest) -> tuple[str, ...]:
        return ()

    async def complete(self, req: ChatRequest, dep: object) -> Completion:
        self.calls.append("upstream")
        return Completion(body={"choices": []}, usage=Usage(prompt_tokens=3, completion_tokens=2))


def test_the_dispatcher_says_when_an_attempt_goes_upstream() -> None:
    """`on_wait` is called as each attempt goes upstream, before it awaits the answer."""
    calls: list[str] = []
    catalogue = load_catalogue()
    providers = {"deepinfra": _Upstream(calls)}
    dispatcher = Dispatcher(
        providers,  # type: ignore[arg-type]
        catalogue,
        load_price_book(),
        LiveState(),
        on_wait=lambda: calls.append("wait"),
    )
    req = ChatRequest(
        body={"messages": [{"role": "user", "content": "hi"}]},
        model="llama-4-scout",
        stream=False,
        include_usage=False,
        features=frozenset(),
        prompt_tokens_estimate=3,
        max_output_tokens=16,
        prefs=CorralPrefs(),
    )
    _, outcome = asyncio.run(dispatcher.complete(req))
    assert outcome.deployment.provider == "deepinfra"
    assert calls == ["wait", "upstream"]
