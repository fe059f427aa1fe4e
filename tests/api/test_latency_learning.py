"""The latency model learns the truth from plain non-streamed traffic through the running
gateway: two OpenAI-dialect fakes generating at configured paces, one slow to start but
fast to generate (DeepInfra: 400 ms, 500 tokens/s), one quick to start but slow to
generate (Together: 40 ms, 100 tokens/s). Neither reports server timings, and neither
fake's prior is the truth, so every figure `POST /v1/route/explain` shows afterwards was
learned from total times against answer lengths.

Tolerance (stated, and printed with the errors): TTFT within 60 ms or 20 %, whichever is
larger (the gateway and the loopback add a few ms, a loaded test machine tens), tokens/s
within 20 %.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from gateway.config import load_settings
from gateway.fakes.script import Behaviour
from gateway.runtime import Runtime
from tests.support import running_gateway

MAVERICK = "llama-4-maverick"
#: provider -> (TTFT ms, tokens/s) the fake really runs at.
TRUTH = {"deepinfra": (400.0, 500.0), "together": (40.0, 100.0)}
LENGTHS = (8, 32, 100, 200)
ROUNDS = 6
BOTH = {"only": list(TRUTH)}


def ttft_ok(estimate: float, truth: float) -> bool:
    return abs(estimate - truth) <= max(60.0, 0.2 * truth)


@pytest.fixture(scope="module")
def paced() -> Iterator[tuple[httpx.Client, Runtime]]:
    settings = load_settings(env={})
    with running_gateway(settings) as (url, runtime), httpx.Client(base_url=url, timeout=60) as client:
        for fake in runtime.fakes:
            if fake.provider in TRUTH:
                latency_ms, tokens_per_s = TRUTH[fake.provider]
                behaviour = Behaviour(latency_ms=latency_ms, tokens_per_s=tokens_per_s, completion_tokens=4096)
                fake.script.default = behaviour
        yield client, runtime


def chat(client: httpx.Client, provider: str, max_tokens: int) -> httpx.Response:
    body = {
        "model": MAVERICK,
        "messages": [{"role": "user", "content": "tell me a story"}],
        "max_tokens": max_tokens,
        "corral": {"providers": {"only": [provider]}},
    }
    return client.post("/v1/chat/completions", json=body)


def explain(client: httpx.Client, max_tokens: int, **corral: Any) -> dict[str, Any]:
    body = {
        "model": MAVERICK,
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": max_tokens,
        "corral": {"providers": BOTH, **corral},
    }
    response = client.post("/v1/route/explain", json=body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def rows(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["provider"]: row for row in plan["plan"]}


@pytest.fixture(scope="module")
def learned(paced: tuple[httpx.Client, Runtime]) -> tuple[httpx.Client, Runtime]:
    client, runtime = paced
    jobs = [(p, n) for _ in range(ROUNDS) for n in LENGTHS for p in TRUTH]
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda job: chat(client, *job), jobs))
    for (provider, tokens), answer in zip(jobs, answers, strict=True):
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-corral-provider"] == provider
        assert answer.json()["usage"]["completion_tokens"] == tokens
    # On the wire: every request the fakes received was non-streamed (nothing to measure apart).
    for fake in runtime.fakes:
        if fake.provider in TRUTH:
            assert fake.requests and all(not r.json.get("stream") for r in fake.requests)
    return client, runtime


def test_estimates_converge_to_the_configured_truth(learned: tuple[httpx.Client, Runtime]) -> None:
    client, _ = learned
    short, long = rows(explain(client, 8)), rows(explain(client, 200))
    report = []
    for provider, (ttft, tokens_per_s) in TRUTH.items():
        got_ttft = short[provider]["expected_ttft_ms"]
        ms_per_token = (long[provider]["expected_latency_ms"] - short[provider]["expected_latency_ms"]) / 192
        got_tps = 1000.0 / ms_per_token
        assert short[provider]["latency_samples"] == ROUNDS * len(LENGTHS)
        report.append(
            f"{provider}: TTFT {got_ttft:.0f} ms (truth {ttft:.0f}, error {got_ttft - ttft:+.0f} ms), "
            f"{got_tps:.0f} tokens/s (truth {tokens_per_s:.0f}, error {100 * (got_tps / tokens_per_s - 1):+.1f} %)"
        )
        assert ttft_ok(got_ttft, ttft), report[-1]
        assert got_tps == pytest.approx(tokens_per_s, rel=0.2), report[-1]
    print("\nafter", ROUNDS * len(LENGTHS), "non-streamed answers each:\n" + "\n".join(report))


def test_a_ttft_slo_is_judged_right_for_each(learned: tuple[httpx.Client, Runtime]) -> None:
    """200 ms at p90: the quick starter meets it, the slow starter misses it, whatever the length."""
    client, _ = learned
    for max_tokens in (8, 200):
        plan = explain(client, max_tokens, max_ttft_ms=200)
        assert plan["objective"]["percentile"] == "p90"
        got = rows(plan)
        assert got["together"]["meets_slo"] is True, got
        assert got["deepinfra"]["meets_slo"] is False, got
        assert got["together"]["slo_ttft_ms"] >= got["together"]["expected_ttft_ms"]


def test_latency_first_ranks_the_really_faster_one_first_for_each_length(
    learned: tuple[httpx.Client, Runtime],
) -> None:
    """Short answers: the quick starter is faster (40 + 80 ms vs 400 + 16 ms); long answers:
    the fast generator (400 + 400 ms vs 40 + 2000 ms)."""
    client, _ = learned
    assert explain(client, 8, prefer="latency")["plan"][0]["provider"] == "together"
    assert explain(client, 200, prefer="latency")["plan"][0]["provider"] == "deepinfra"


def _metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} {labels} not in /metrics")


def test_the_ttft_histogram_covers_non_streamed_answers_with_how_it_was_obtained(
    learned: tuple[httpx.Client, Runtime],
) -> None:
    """Together's 24 non-streamed answers are in the TTFT histogram as `whole_answer` (the
    client's first token came with the whole answer: 8 tokens >= 120 ms, 32 >= 360 ms, 100
    >= 1040 ms, 200 >= 2040 ms); a stream is there as `stream`. SLO values are bucket edges."""
    client, _ = learned
    body = {
        "model": MAVERICK,
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 8,
        "stream": True,
        "corral": {"providers": {"only": ["together"]}},
    }
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        response.read()
    text = client.get("/metrics").text
    name = "corral_time_to_first_token_seconds"
    whole = {"provider": "together", "how": "whole_answer"}
    assert _metric(text, name + "_count", **whole) == ROUNDS * len(LENGTHS)
    assert _metric(text, name + "_bucket", le="0.1", **whole) == 0
    assert _metric(text, name + "_bucket", le="0.25", **whole) == ROUNDS
    assert _metric(text, name + "_bucket", le="2.0", **whole) <= 3 * ROUNDS
    assert _metric(text, name + "_count", provider="together", how="stream") == 1
    for edge in ("0.2", "0.25", "0.3", "0.5", "0.75", "1.0", "1.5", "2.0", "3.0"):
        _metric(text, name + "_bucket", le=edge, **whole)


def test_a_streams_ttft_is_its_own_deployments_not_the_failed_attempts_before_it() -> None:
    """DeepInfra answers "overloaded" after 600 ms, then Together serves the stream 40 ms after
    it was asked: Together's learned TTFT excludes the time spent on DeepInfra (with it, the
    one sample would pull the estimate to about 600 ms)."""
    with running_gateway(load_settings(env={})) as (url, runtime), httpx.Client(base_url=url, timeout=60) as client:
        for fake in runtime.fakes:
            if fake.provider == "deepinfra":
                fake.script.default = Behaviour(latency_ms=600, error="overloaded")
            elif fake.provider == "together":
                fake.script.default = Behaviour(latency_ms=40, tokens_per_s=200, completion_tokens=20)
        body = {
            "model": MAVERICK,
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
            "corral": {"providers": {"only": list(TRUTH), "order": ["deepinfra", "together"]}},
        }
        with client.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            assert response.headers["x-corral-provider"] == "together"
            response.read()
        assert any(f.requests for f in runtime.fakes if f.provider == "deepinfra")
        stats = runtime.state.stats["together/llama-4-maverick"]
        assert stats.samples == 1
        assert stats.ttft_ms(runtime.state.clock()) < 300
