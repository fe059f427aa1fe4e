"""Fireworks, SGLang and Ollama through the whole gateway, each "real" backend being its
fake on another port reached through CORRAL_<NAME>_BASE_URL. SGLang and Ollama are used
only when their base URL is set; the demo mode simulates Fireworks but neither of them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from gateway.config import OLLAMA_LOCAL_URL, load_settings
from gateway.fakes.fireworks import FireworksFake
from gateway.fakes.ollama import OllamaFake
from gateway.fakes.server import FakeServer, running_in_thread
from gateway.fakes.sglang import SglangFake
from tests.support import running_gateway

CASES = [
    ("fireworks", lambda: FireworksFake(api_key="fw-live-looking"), {"FIREWORKS_API_KEY": "fw-live-looking"}),
    ("sglang", SglangFake, {}),
    ("ollama", OllamaFake, {}),
]
SCOUT_IDS = {
    "fireworks": "accounts/fireworks/models/llama4-scout-instruct-basic",
    "sglang": "meta-llama/Llama-4-Scout-17B-16E-Instruct",
    "ollama": "llama4:scout",
}


def chat(client: httpx.Client, **extra: Any) -> httpx.Response:
    body = {"model": "llama-4-scout", "messages": [{"role": "user", "content": "hi"}], **extra}
    return client.post("/v1/chat/completions", json=body)


@pytest.mark.parametrize(("name", "make", "keys"), CASES, ids=[c[0] for c in CASES])
def test_a_configured_preset_serves_is_metered_and_listed(name: str, make: Any, keys: dict[str, str]) -> None:
    upstream: FakeServer = make()
    with running_in_thread(upstream):
        env = {**keys, f"CORRAL_{name.upper()}_BASE_URL": upstream.base_url}
        with running_gateway(load_settings(env=env)) as (url, runtime), httpx.Client(base_url=url) as client:
            assert set(runtime.providers) == {name} and not runtime.fakes
            answer = chat(client)
            assert answer.status_code == 200, answer.text
            assert answer.headers["x-corral-provider"] == name
            assert upstream.requests[-1].json["model"] == SCOUT_IDS[name]
            cost = Decimal(answer.headers["x-corral-cost-usd"])
            assert cost > 0 if name == "fireworks" else cost >= 0
            streamed = chat(client, stream=True, stream_options={"include_usage": True})
            assert streamed.status_code == 200 and streamed.text.rstrip().endswith("data: [DONE]")
            assert '"prompt_tokens"' in streamed.text
            models = client.get("/v1/models").json()["data"]
            scout = next(m for m in models if m["id"] == "llama-4-scout")
            status = {d["provider"]: d for d in scout["deployments"]}
            assert status[name]["status"] == "active" and not status[name]["simulated"]


def test_upstream_errors_of_a_preset_reach_the_client_openai_shaped() -> None:
    upstream = FireworksFake(api_key="fw-live-looking")
    with running_in_thread(upstream):
        env = {"FIREWORKS_API_KEY": "fw-live-looking", "CORRAL_FIREWORKS_BASE_URL": upstream.base_url}
        with running_gateway(load_settings(env=env)) as (url, _), httpx.Client(base_url=url) as client:
            answer = chat(client, messages=[{"role": "user", "content": 'hi [[fake: {"error": "context_too_long"}]]'}])
            assert answer.status_code == 400 and answer.json()["error"]["code"] == "context_length_exceeded"
            assert "fw-live-looking" not in answer.text


def test_demo_mode_simulates_fireworks_but_never_sglang_or_ollama() -> None:
    with running_gateway(load_settings(env={})) as (_, runtime):
        assert "fireworks" in runtime.providers and runtime.providers["fireworks"].simulated
        assert not {"sglang", "ollama"} & set(runtime.providers)


def test_ollama_needs_its_base_url_set_explicitly() -> None:
    assert not load_settings(env={}).providers["ollama"].has_credentials()
    assert not load_settings(env={"OLLAMA_API_KEY": "ollama"}).providers["ollama"].has_credentials()
    configured = load_settings(env={"CORRAL_OLLAMA_BASE_URL": OLLAMA_LOCAL_URL}).providers["ollama"]
    assert configured.has_credentials() and configured.base_url == OLLAMA_LOCAL_URL
    assert load_settings(env={}).providers["fireworks"].base_url == "https://api.fireworks.ai/inference/v1"
