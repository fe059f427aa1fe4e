"""With credentials set, the gateway talks only to those providers: no simulated backend
is mixed in. Here the "real" DeepInfra is its fake on another port, reached through
CORRAL_DEEPINFRA_BASE_URL, exactly as a regional endpoint or an egress proxy would be."""

from __future__ import annotations

from pathlib import Path

import httpx

from gateway.config import load_settings
from gateway.fakes.deepinfra import DeepInfraFake
from gateway.fakes.server import running_in_thread
from tests.support import running_gateway


def test_only_providers_with_credentials_are_used() -> None:
    upstream = DeepInfraFake(api_key="live-looking-key")
    with running_in_thread(upstream):
        env = {"DEEPINFRA_API_KEY": "live-looking-key", "CORRAL_DEEPINFRA_BASE_URL": upstream.base_url}
        with running_gateway(load_settings(env=env)) as (url, runtime), httpx.Client(base_url=url) as client:
            assert set(runtime.providers) == {"deepinfra"}
            assert not runtime.fakes
            assert not runtime.providers["deepinfra"].simulated
            answer = client.post(
                "/v1/chat/completions",
                json={"model": "llama-4-maverick", "messages": [{"role": "user", "content": "hi"}]},
            )
            assert answer.status_code == 200
            assert answer.headers["x-corral-provider"] == "deepinfra"
            sent = upstream.requests[-1]
            assert sent.headers["Authorization"] == "Bearer live-looking-key"
            assert sent.json["model"] == "meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8"
            models = client.get("/v1/models").json()["data"]
            maverick = next(m for m in models if m["id"] == "llama-4-maverick")
            status = {d["provider"]: d for d in maverick["deployments"]}
            assert status["deepinfra"]["status"] == "active" and not status["deepinfra"]["simulated"]
            assert status["together"]["status"] == "unavailable"


def test_wrong_upstream_key_is_a_gateway_error_not_a_client_401() -> None:
    upstream = DeepInfraFake(api_key="the-right-key")
    with running_in_thread(upstream):
        env = {"DEEPINFRA_API_KEY": "a-wrong-key", "CORRAL_DEEPINFRA_BASE_URL": upstream.base_url}
        with running_gateway(load_settings(env=env)) as (url, _), httpx.Client(base_url=url) as client:
            answer = client.post(
                "/v1/chat/completions",
                json={"model": "llama-4-maverick", "messages": [{"role": "user", "content": "hi"}]},
            )
            assert answer.status_code == 502
            error = answer.json()["error"]
            assert error["attempts"][0]["kind"] == "auth"
            assert "a-wrong-key" not in answer.text


def test_demo_mode_says_so_on_readyz() -> None:
    with running_gateway(load_settings(env={})) as (url, runtime), httpx.Client(base_url=url) as client:
        body = client.get("/readyz").json()
        assert body["status"] == "ready" and body["simulated"] == sorted(runtime.providers)
        assert "built-in fakes" in body["warning"]


def test_a_deployment_config_with_no_credentials_is_not_ready_rather_than_simulated() -> None:
    settings = load_settings(Path(__file__).resolve().parents[2] / "deploy" / "corral.yaml", env={})
    with running_gateway(settings) as (url, runtime), httpx.Client(base_url=url) as client:
        assert not runtime.fakes and not runtime.providers
        reply = client.get("/readyz")
        assert reply.status_code == 503 and "simulated" not in reply.json()
