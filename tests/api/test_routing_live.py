"""Routing against the fakes through a running gateway: breakers, cooldowns, pool
spill-over, policy hot reload, and breaker state shared by two gateways through Redis."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis

from gateway.config import load_settings
from gateway.fakes.script import Behaviour
from gateway.runtime import Runtime
from tests.support import running_gateway

REDIS_URL = "redis://127.0.0.1:6379/15"
SCOUT = "llama-4-scout"
#: Maverick: both DeepInfra and Together serve it (Together dropped Scout from serverless).
MAVERICK = "llama-4-maverick"

POLICY = """
version: 1
name: {name}
defaults:
  objective: {{prefer: cost}}
  pool: {{prefer_pool: {prefer_pool}, max_queue_depth: 1, max_kv_cache_usage: 0.95, cost_model: effective}}
  breaker: {{consecutive_failures: 3, error_rate: 0.5, min_requests: 50, window_s: 30, cooldown_s: 1}}
  retry: {{attempts: 3, deadline_ms: 20000, tries_per_deployment: 1}}
  {extra}
"""
CONFIG = """
providers:
  vllm:
    vllm: {metrics_interval_s: 0.1, health_interval_s: 0.2}
"""


def write_policy(path: Path, name: str, prefer_pool: bool = False, extra: str = "") -> None:
    path.write_text(POLICY.format(name=name, prefer_pool=str(prefer_pool).lower(), extra=extra))


def eventually(check: Callable[[], bool], seconds: float = 15.0) -> None:
    """Poll until `check` holds (a bounded wait for background work, not a timing claim)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[httpx.Client, Runtime, Path]]:
    policy = tmp_path / "policy.yaml"
    write_policy(policy, "first")
    config = tmp_path / "corral.yaml"
    config.write_text(CONFIG)
    settings = load_settings(config, env={"CORRAL_POLICY": str(policy)})
    with running_gateway(settings) as (url, runtime), httpx.Client(base_url=url, timeout=30) as client:
        yield client, runtime, policy


def chat(client: httpx.Client, model: str = MAVERICK, **corral: object) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16, "corral": corral}
    return client.post("/v1/chat/completions", json=body)


def fake(runtime: Runtime, provider: str, model_id: str | None = None) -> object:
    return next(
        f
        for f in runtime.fakes
        if f.provider == provider and (model_id is None or getattr(f, "model_id", None) == model_id)
    )


def test_failing_provider_trips_its_breaker_and_no_client_request_fails(gateway: tuple) -> None:  # type: ignore[type-arg]
    client, runtime, _ = gateway
    only = {"providers": {"only": ["deepinfra", "together"]}}
    fake(runtime, "deepinfra").script.default = Behaviour(error="overloaded")  # type: ignore[attr-defined]
    served = [chat(client, **only) for _ in range(12)]
    assert all(r.status_code == 200 for r in served), "every request was served by a fallback"
    assert {r.headers["x-corral-provider"] for r in served} == {"together"}
    attempts = [int(r.headers["x-corral-attempts"]) for r in served]
    assert attempts[:3] == [2, 2, 2] and attempts[-1] == 1, "after 3 failures the breaker skips deepinfra"
    explain = client.post("/v1/route/explain", json={"model": MAVERICK, "messages": [{"role": "user", "content": "x"}]})
    dropped = {d["provider"]: d["reason"] for d in explain.json()["dropped"]}
    assert "circuit breaker open" in dropped["deepinfra"]
    fake(runtime, "deepinfra").script.clear()  # type: ignore[attr-defined]
    eventually(lambda: chat(client, **only).headers["x-corral-provider"] == "deepinfra")


def test_429_storm_moves_traffic_and_it_returns_after_the_cooldown(gateway: tuple) -> None:  # type: ignore[type-arg]
    client, runtime, _ = gateway
    only = {"providers": {"only": ["deepinfra", "together"]}}
    fake(runtime, "deepinfra").script.default = Behaviour(error="rate_limited", retry_after_s=1)  # type: ignore[attr-defined]
    first = chat(client, **only)
    assert first.status_code == 200 and first.headers["x-corral-provider"] == "together"
    fake(runtime, "deepinfra").script.clear()  # type: ignore[attr-defined]
    during = chat(client, **only)
    assert during.headers["x-corral-provider"] == "together" and during.headers["x-corral-attempts"] == "1"
    eventually(lambda: chat(client, **only).headers["x-corral-provider"] == "deepinfra")


def test_pool_spills_over_to_hosted_when_its_queue_fills(gateway: tuple) -> None:  # type: ignore[type-arg]
    client, runtime, policy = gateway
    write_policy(policy, "pool-first", prefer_pool=True)
    assert client.post("/admin/policy/reload").json()["reloaded"]
    scout_id = "meta-llama/Llama-4-Scout-17B-16E-Instruct"
    pool = fake(runtime, "vllm", scout_id)
    assert chat(client, SCOUT).headers["x-corral-provider"] == "vllm"
    pool.script.default = Behaviour(latency_ms=3000)  # type: ignore[attr-defined]
    pool.scheduler.max_num_seqs = 1  # type: ignore[attr-defined]
    with ThreadPoolExecutor(4) as pool_threads:
        slow = [pool_threads.submit(chat, client, SCOUT, providers={"only": ["vllm"]}) for _ in range(3)]
        eventually(
            lambda: runtime.state.pool_source is not None and runtime.state.pool_source()[SCOUT].queue_depth >= 1
        )
        spilled = chat(client, SCOUT)
        assert spilled.status_code == 200
        assert spilled.headers["x-corral-provider"] != "vllm"
        assert all(f.result().status_code == 200 for f in slow)


def test_policy_change_on_disk_applies_without_restart_and_a_broken_one_is_refused(gateway: tuple) -> None:  # type: ignore[type-arg]
    client, runtime, policy = gateway
    hosted = {"providers": {"only": ["deepinfra", "together"]}}
    assert chat(client, **hosted).headers["x-corral-provider"] == "deepinfra"  # the cheaper of the two
    write_policy(policy, "second", extra="order: [together]")
    eventually(lambda: runtime.policy.current.name == "second")
    assert chat(client, **hosted).headers["x-corral-provider"] == "together"
    policy.write_text("version: 1\nname: broken\ndefaults: {objective: {prefer: cheapest}}\n")
    eventually(lambda: runtime.policy.rejected_reloads >= 1)
    assert runtime.policy.current.name == "second"
    assert chat(client, **hosted).headers["x-corral-provider"] == "together"
    refused = client.post("/admin/policy/reload")
    assert refused.status_code == 422
    body = refused.json()
    assert body["reloaded"] is False and "policy.yaml" in body["error"]["message"]


@pytest.fixture
def redis_db() -> Iterator[None]:
    r = redis.Redis.from_url(REDIS_URL)
    r.flushdb()
    yield
    r.flushdb()
    r.close()


def test_two_gateways_share_breaker_state_through_redis(tmp_path: Path, redis_db: None) -> None:
    policy = tmp_path / "policy.yaml"
    write_policy(policy, "shared")
    env = {"CORRAL_POLICY": str(policy), "REDIS_URL": REDIS_URL}
    key = "deepinfra/llama-4-maverick"
    with (
        running_gateway(load_settings(env=env)) as (url_a, rt_a),
        running_gateway(load_settings(env=env)) as (url_b, rt_b),
        httpx.Client(base_url=url_a, timeout=30) as a,
        httpx.Client(base_url=url_b, timeout=30) as b,
    ):
        eventually(
            lambda: (
                rt_a.shared is not None and rt_a.shared.connected and rt_b.shared is not None and rt_b.shared.connected
            )
        )
        fake(rt_a, "deepinfra").script.default = Behaviour(error="server_error")  # type: ignore[attr-defined]
        for _ in range(3):
            assert chat(a, providers={"only": ["deepinfra", "together"]}).status_code == 200
        assert rt_a.state.breakers[key].state == "open"
        eventually(lambda: key in rt_b.state.breakers and rt_b.state.breakers[key].state == "open")
        served = chat(b, providers={"only": ["deepinfra", "together"]})
        assert served.headers["x-corral-provider"] == "together"
        assert served.headers["x-corral-attempts"] == "1", "B never tried the backend A found broken"
        assert not fake(rt_b, "deepinfra").requests  # type: ignore[attr-defined]


def test_redis_going_away_degrades_to_local_state_never_to_errors(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    write_policy(policy, "no-redis")
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: Redis is "down"
    env = {"CORRAL_POLICY": str(policy), "REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    with running_gateway(load_settings(env=env)) as (url, runtime), httpx.Client(base_url=url, timeout=30) as client:
        fake(runtime, "deepinfra").script.default = Behaviour(error="server_error")  # type: ignore[attr-defined]
        served = [chat(client, providers={"only": ["deepinfra", "together"]}) for _ in range(5)]
        assert all(r.status_code == 200 for r in served)
        assert runtime.shared is not None and not runtime.shared.connected
        assert runtime.state.breakers["deepinfra/llama-4-maverick"].state == "open", "local state still routes"
