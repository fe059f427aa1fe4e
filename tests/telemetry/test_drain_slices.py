"""Metrics and access lines are folded in slices off the request path, so a burst of
requests never holds the event loop for one long drain (the p99.9 stall `make bench` saw)."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from prometheus_client import generate_latest

from gateway.telemetry import metrics as metrics_module
from gateway.telemetry.logs import AccessLog
from gateway.telemetry.metrics import DRAIN_SLICE, Metrics
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
