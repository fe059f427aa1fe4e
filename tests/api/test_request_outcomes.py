"""`corral_requests_total` counts every chat request exactly once, by how it ended: after
mixed traffic through a running gateway (served, streamed, split between two providers,
refused by authentication, bad requests, a policy rule, the keys' limits and budgets, a
failing backend and then its open breaker), the scraped counters equal what the client saw."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from gateway.config import load_settings
from gateway.fakes.script import Behaviour
from gateway.runtime import Runtime
from tests.support import running_gateway

ADMIN = "sk-bootstrap-admin"
SCOUT = "llama-4-scout"
MAVERICK = "llama-4-maverick"
POLICY = """
version: 1
name: outcomes
defaults:
  objective: {prefer: cost}
  pool: {prefer_pool: false}
  breaker: {consecutive_failures: 1, error_rate: 0.5, min_requests: 50, window_s: 30, cooldown_s: 300}
  retry: {attempts: 1, deadline_ms: 20000, tries_per_deployment: 1}
rules:
  - name: blocked
    match: {tags: {block: "yes"}}
    reject: Blocked by the test policy.
  - name: canary
    match: {models: [llama-4-maverick]}
    split:
      - {provider: deepinfra, weight_pct: 50}
      - {provider: together, weight_pct: 50}
"""

Labels = tuple[tuple[str, str], ...]


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[httpx.Client, Runtime]]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'keys.db'}", "CORRAL_POLICY": str(policy)}
    settings = load_settings(env=env).model_copy(update={"api_keys": [SecretStr(ADMIN)]})
    with running_gateway(settings, auth=True) as (url, runtime), httpx.Client(base_url=url, timeout=30) as http:
        yield http, runtime


def _bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def _key(client: httpx.Client, **spec: object) -> str:
    made = client.post("/admin/keys", json=spec, headers=_bearer(ADMIN))
    assert made.status_code == 201, made.text
    return str(made.json()["key"])


def _body(model: str = SCOUT, **corral: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16, "corral": corral}


def _requests_total(client: httpx.Client) -> dict[Labels, float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for s in family.samples
        if s.name == "corral_requests_total" and s.value
    }


def _by(counted: dict[Labels, float], *names: str) -> Counter[tuple[str, ...]]:
    out: Counter[tuple[str, ...]] = Counter()
    for labels, value in counted.items():
        as_dict = dict(labels)
        out[tuple(as_dict[n] for n in names)] += int(value)
    return out


def test_every_request_is_counted_once_by_outcome_and_reason(gateway: tuple[httpx.Client, Runtime]) -> None:
    client, runtime = gateway
    chat = _key(client, scopes="chat")
    limited = _key(client, scopes="chat", rpm=1)
    broke = _key(client, scopes="chat", budget_usd="0.0000000001", budget_period="day")
    expected: Counter[tuple[str, str]] = Counter()

    def send(status: int, outcome: str, reason: str, headers: dict[str, str], **kw: Any) -> httpx.Response:
        sent = client.post("/v1/chat/completions", headers=headers, **kw)
        assert sent.status_code == status, sent.text
        expected[outcome, reason] += 1
        return sent

    for _ in range(3):
        send(200, "served", "ok", _bearer(chat), json=_body())
    for _ in range(2):
        streamed = send(200, "served", "ok", _bearer(chat), json={**_body(), "stream": True})
        assert streamed.text.rstrip().endswith("data: [DONE]")
    arms = Counter(
        send(200, "served", "ok", _bearer(chat), json=_body(MAVERICK)).headers["x-corral-provider"] for _ in range(6)
    )
    send(401, "refused", "auth", {}, json=_body())
    send(401, "refused", "auth", _bearer("ck_not-a-key"), json=_body())
    send(400, "refused", "bad_request", _bearer(chat), content=b"{not json")
    send(404, "refused", "bad_request", _bearer(chat), json=_body("no-such-model"))
    send(403, "refused", "policy", _bearer(chat), json=_body(tags={"block": "yes"}))
    send(200, "served", "ok", _bearer(limited), json=_body())
    send(429, "refused", "rate_limited", _bearer(limited), json=_body())
    send(200, "served", "ok", _bearer(broke), json=_body())
    send(402, "refused", "budget", _bearer(broke), json=_body())
    only_deepinfra = {"providers": {"only": ["deepinfra"]}}
    next(f for f in runtime.fakes if f.provider == "deepinfra").script.default = Behaviour(error="server_error")
    send(502, "failed", "upstream_failed", _bearer(chat), json=_body(**only_deepinfra))
    for _ in range(3):
        refused = send(503, "refused", "breaker_open", _bearer(chat), json=_body(**only_deepinfra))
        assert refused.json()["error"]["code"] == "no_deployment_available"

    deadline = time.monotonic() + 15
    counted = _requests_total(client)
    while _by(counted, "outcome", "reason") != expected and time.monotonic() < deadline:
        time.sleep(0.1)
        counted = _requests_total(client)
    assert _by(counted, "outcome", "reason") == expected
    assert sum(counted.values()) == sum(expected.values())
    assert _by(counted, "rule", "outcome")["blocked", "refused"] == 1
    split = _by(counted, "rule", "arm", "outcome")
    assert {arm: n for (rule, arm, outcome), n in split.items() if rule == "canary"} == dict(arms)
    assert _by(counted, "model")[("none",)] == 4, "unparsed requests and an unknown model carry no model label"
    labels = {name for key in counted for name, _ in key}
    assert labels == {"model", "provider", "outcome", "reason", "rule", "arm"}


def test_streams_that_end_badly_are_counted_by_how_they_ended(gateway: tuple[httpx.Client, Runtime]) -> None:
    """A client that leaves mid-stream is client_gone; an upstream that fails mid-stream is
    failed (the client had a 200 and an error event)."""
    client, runtime = gateway
    chat = _key(client, scopes="chat")
    deepinfra = next(f for f in runtime.fakes if f.provider == "deepinfra")
    only = {"providers": {"only": ["deepinfra"]}}
    deepinfra.script.default = Behaviour(tokens_per_s=5, completion_tokens=200)
    body = {**_body(**only), "stream": True}
    with client.stream("POST", "/v1/chat/completions", json=body, headers=_bearer(chat)) as stream:
        assert stream.status_code == 200
        next(stream.iter_bytes())  # the first chunk; then the client leaves
    deepinfra.script.default = Behaviour(tokens_per_s=50, mid_stream_error_after=5)
    failed = client.post("/v1/chat/completions", json=body, headers=_bearer(chat))
    assert failed.status_code == 200 and '"error"' in failed.text
    expected = {("client_gone", "client_gone"): 1, ("failed", "upstream_failed"): 1}
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        counted = _by(_requests_total(client), "outcome", "reason")
        if all(counted[key] == n for key, n in expected.items()):
            break
        time.sleep(0.1)
    assert {key: counted[key] for key in expected} == expected
    assert sum(counted.values()) == 2, "nothing else was counted"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/responses", {"model": SCOUT, "input": "hi", "max_output_tokens": 16}),
        ("/v1/completions", {"model": SCOUT, "prompt": "hi", "max_tokens": 16}),
    ],
)
def test_responses_and_completions_requests_are_counted_too(
    gateway: tuple[httpx.Client, Runtime], path: str, body: dict[str, Any]
) -> None:
    client, _ = gateway
    chat = _key(client, scopes="chat")
    assert client.post(path, json=body).status_code == 401
    assert client.post(path, json={**body, "model": "no-such-model"}, headers=_bearer(chat)).status_code == 404
    assert client.post(path, json=body, headers=_bearer(chat)).status_code == 200
    expected = {("refused", "auth"): 1, ("refused", "bad_request"): 1, ("served", "ok"): 1}
    deadline = time.monotonic() + 15
    counted = _by(_requests_total(client), "outcome", "reason")
    while counted != expected and time.monotonic() < deadline:
        time.sleep(0.1)
        counted = _by(_requests_total(client), "outcome", "reason")
    assert counted == expected
