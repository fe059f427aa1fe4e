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
        s.observe_split(ttft_ms=1000, output_tokens=100, generation_s=2.0, now=float(i))
    assert 900 < s.ttft_ms(30) < 1000
    assert 50 < s.tokens_per_s(30) < 60
    assert s.expected_latency_ms(100, 30) == pytest.approx(s.ttft_ms(30) + 100_000 / s.tokens_per_s(30))


def test_stats_decay_back_towards_the_prior() -> None:
    s = LatencyStats(Prior(ttft_ms=200, tokens_per_s=100), half_life_s=10, prior_weight=3)
    for i in range(10):
        s.observe_split(1000, 0, 0.0, float(i))
    recent = s.ttft_ms(10)
    later = s.ttft_ms(100)
    assert later < recent
    assert later == pytest.approx(200, abs=20)
    s.observe_split(400, 0, 0.0, 100)
    assert s.ttft_ms(100) < recent


def _truth_ms(ttft_ms: float, tokens_per_s: float, tokens: int) -> float:
    return ttft_ms + 1000.0 * tokens / tokens_per_s


@pytest.mark.parametrize("prior", [Prior(200, 450), Prior(2000, 20), Prior(500, 100)])
def test_total_times_of_mixed_lengths_separate_ttft_from_pace_whatever_the_prior(prior: Prior) -> None:
    """Non-streamed answers measured only as totals: the fit recovers the truth (TTFT 800 ms,
    250 tokens/s) from any prior, because nothing the model estimates is fed back to it."""
    s = LatencyStats(prior, half_life_s=600)
    lengths = (16, 400, 64, 900, 200, 32, 700)
    for i in range(60):
        tokens = lengths[i % len(lengths)]
        s.observe_total(_truth_ms(800, 250, tokens), tokens, now=float(i))
    assert s.ttft_ms(60) == pytest.approx(800, rel=0.05)
    assert s.tokens_per_s(60) == pytest.approx(250, rel=0.05)
    assert s.samples == 60


def test_a_slow_starter_and_a_slow_generator_are_told_apart() -> None:
    """Slow to start but fast to generate vs quick to start but slow to generate: which is
    faster depends on the length, and the model says so after non-streamed traffic only."""
    slow_start, slow_gen = LatencyStats(Prior(500, 100)), LatencyStats(Prior(500, 100))
    for i in range(40):
        tokens = (20, 600, 100, 1000)[i % 4]
        slow_start.observe_total(_truth_ms(1500, 400, tokens), tokens, now=i / 10)
        slow_gen.observe_total(_truth_ms(100, 50, tokens), tokens, now=i / 10)
    assert slow_gen.ttft_ms(4) < slow_start.ttft_ms(4)
    assert slow_gen.expected_latency_ms(20, 4) < slow_start.expected_latency_ms(20, 4)
    assert slow_start.expected_latency_ms(1000, 4) < slow_gen.expected_latency_ms(1000, 4)


def test_same_length_totals_predict_that_length_and_lean_on_the_prior_for_the_split() -> None:
    s = LatencyStats(Prior(300, 100))
    for i in range(30):
        s.observe_total(1300.0, 100, now=float(i))
    assert s.expected_latency_ms(100, 30) == pytest.approx(1300, rel=0.03)


def test_split_observations_and_totals_share_one_model() -> None:
    s = LatencyStats(Prior(300, 100))
    for i in range(20):
        s.observe_split(600, 200, 1.0, now=float(i))  # measured apart: 600 ms, 200 tokens/s
        s.observe_total(_truth_ms(600, 200, 50), 50, now=float(i))
    assert s.ttft_ms(20) == pytest.approx(600, rel=0.05)
    assert s.tokens_per_s(20) == pytest.approx(200, rel=0.05)


def test_spread_follows_the_jitter_and_gives_percentiles() -> None:
    steady, jittery = LatencyStats(Prior(500, 100)), LatencyStats(Prior(500, 100))
    for i in range(200):
        steady.observe_split(500, 0, 0.0, now=i / 10)
        jittery.observe_split(500 + (300 if i % 2 else -300), 0, 0.0, now=i / 10)
    tight, wide = steady.estimate(100, 20), jittery.estimate(100, 20)
    assert tight.spread_ms < 40
    assert 250 < wide.spread_ms < 320
    assert wide.at("p50")[0] == pytest.approx(wide.ttft_ms)
    assert wide.at("p99")[0] > wide.at("p95")[0] > wide.at("p90")[0] > wide.ttft_ms
