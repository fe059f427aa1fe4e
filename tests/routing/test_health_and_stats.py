"""The breaker state machine and the decayed latency statistics, driven by explicit time."""

from __future__ import annotations

import pytest

from gateway.routing.health import Breaker
from gateway.routing.policy.model import Breaker as BreakerConfig
from gateway.routing.stats import LatencyStats, Prior

CONFIG = BreakerConfig(consecutive_failures=3, error_rate=0.5, min_requests=10, window_s=30, cooldown_s=10)


def test_opens_after_consecutive_failures_then_half_opens_and_closes() -> None:
    b = Breaker(CONFIG)
    for t in range(3):
        assert b.allow(float(t))
        b.record(False, float(t))
    assert b.status(3.0) == "open" and not b.allow(3.0)
    assert b.retry_in(3.0) == pytest.approx(9.0)
    assert b.status(12.5) == "half_open"
    assert b.allow(12.5)
    assert not b.allow(12.6), "only one probe at a time"
    b.record(True, 13.0)
    assert b.status(13.0) == "closed" and b.allow(13.1)


def test_failed_probe_reopens() -> None:
    b = Breaker(CONFIG)
    for t in range(3):
        b.record(False, float(t))
    assert b.allow(20.0)
    b.record(False, 20.5)
    assert b.status(21.0) == "open"
    assert b.status(31.0) == "half_open"


def test_error_rate_over_window_trips_without_a_streak() -> None:
    b = Breaker(CONFIG)
    for i in range(12):
        b.record(i % 2 == 0, float(i))  # alternating: never 3 failures in a row, but 50% errors
    assert b.status(12.0) == "open"


def test_old_results_leave_the_window() -> None:
    b = Breaker(CONFIG)
    for i in range(9):
        b.record(i % 2 == 0, float(i))
    for i in range(10):
        b.record(True, 100.0 + i)
    assert b.status(110.0) == "closed"
    assert len(b.recent) == 10


def test_success_resets_the_streak() -> None:
    b = Breaker(CONFIG)
    b.record(False, 0)
    b.record(False, 1)
    b.record(True, 2)
    b.record(False, 3)
    assert b.status(4.0) == "closed"


def test_stats_lean_on_the_prior_then_follow_samples() -> None:
    s = LatencyStats(Prior(ttft_ms=200, tokens_per_s=100), half_life_s=60, prior_weight=3)
    assert s.ttft_ms(0) == pytest.approx(200)
    for i in range(30):
        s.observe(ttft_ms=1000, output_tokens=100, generation_s=2.0, now=float(i))
    assert 900 < s.ttft_ms(30) < 1000
    assert 50 < s.tokens_per_s(30) < 60
    assert s.expected_latency_ms(100, 30) == pytest.approx(s.ttft_ms(30) + 100_000 / s.tokens_per_s(30))


def test_stats_decay_back_towards_the_prior() -> None:
    s = LatencyStats(Prior(ttft_ms=200, tokens_per_s=100), half_life_s=10, prior_weight=3)
    for i in range(10):
        s.observe(1000, 0, 0.0, float(i))
    recent = s.ttft_ms(10)
    later = s.ttft_ms(100)
    assert later < recent
    assert later == pytest.approx(200, abs=20)
    s.observe(400, 0, 0.0, 100)
    assert s.ttft_ms(100) < recent
