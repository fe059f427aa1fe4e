"""`corral_added_latency_seconds`: what Corral adds to a whole answer, without the upstream's
own time (here a fake that takes 300 ms to answer)."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from gateway.fakes.script import Behaviour
from tests.api.conftest import SimulatedGateway

UPSTREAM_S = 0.3


def _sample(client: httpx.Client, name: str, provider: str) -> float:
    text = client.get("/metrics").text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and s.labels.get("provider") == provider
    )


def test_added_latency_leaves_out_the_upstream_time(gateway: SimulatedGateway) -> None:
    gateway.fake("deepinfra").script.default = Behaviour(latency_ms=UPSTREAM_S * 1000)
    body = {
        "model": "llama-4-scout",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 8,
        "corral": {"providers": {"only": ["deepinfra"]}},
    }
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        before = _sample(client, "corral_added_latency_seconds_count", "deepinfra")
        added_before = _sample(client, "corral_added_latency_seconds_sum", "deepinfra")
        whole_before = _sample(client, "corral_request_duration_seconds_sum", "deepinfra")
        for _ in range(3):
            assert client.post("/v1/chat/completions", json=body).status_code == 200
        assert _sample(client, "corral_added_latency_seconds_count", "deepinfra") - before == 3
        added = _sample(client, "corral_added_latency_seconds_sum", "deepinfra") - added_before
        whole = _sample(client, "corral_request_duration_seconds_sum", "deepinfra") - whole_before
    assert whole >= 3 * UPSTREAM_S, "the whole request time includes the upstream's"
    assert 0 < added < 3 * UPSTREAM_S / 2, "the added time does not"
