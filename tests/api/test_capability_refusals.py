"""A provider's refusal of a feature is a capability miss, never the client's fault: the
request goes to a deployment that can serve it, the miss is remembered (explain, /metrics),
and a request that no deployment can serve gets a 400 naming the feature, not a 503."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.config import load_settings
from gateway.runtime import Runtime
from tests.support import running_gateway

MAVERICK = "llama-4-maverick"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
#: Bedrock ranked first, DeepInfra able to serve: as a new user tried it.
POLICY = """
version: 1
name: bedrock-first
defaults:
  objective: {prefer: cost}
  order: [bedrock, deepinfra]
  retry: {attempts: 3, deadline_ms: 20000, tries_per_deployment: 1}
"""
#: The catalogue as it was: Bedrock claiming forced tool choice for Llama 4.
CLAIMS_TOOL_CHOICE = """
catalogue:
  bedrock/llama-4-maverick: {capabilities: [stream, tools, tool_choice, images]}
"""


def _gateway(tmp_path: Path, config: str = "") -> Iterator[tuple[httpx.Client, Runtime]]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    path = tmp_path / "corral.yaml"
    path.write_text(config or "{}")
    settings = load_settings(path, env={"CORRAL_POLICY": str(policy)})
    with running_gateway(settings) as (url, runtime), httpx.Client(base_url=url, timeout=30) as client:
        yield client, runtime


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[httpx.Client, Runtime]]:
    yield from _gateway(tmp_path)


@pytest.fixture
def overclaiming(tmp_path: Path) -> Iterator[tuple[httpx.Client, Runtime]]:
    yield from _gateway(tmp_path, CLAIMS_TOOL_CHOICE)


def _forced(**corral: object) -> dict[str, object]:
    return {
        "model": MAVERICK,
        "messages": [{"role": "user", "content": "What's the weather in Paris?"}],
        "tools": [WEATHER],
        "tool_choice": "required",
        "max_tokens": 64,
        "corral": corral,
    }


def _bedrock(runtime: Runtime) -> object:
    return next(f for f in runtime.fakes if f.provider == "bedrock")


def test_forced_tool_choice_is_served_elsewhere_and_explain_says_why(gateway: tuple[httpx.Client, Runtime]) -> None:
    client, runtime = gateway
    reply = client.post("/v1/chat/completions", json=_forced())
    assert reply.status_code == 200, reply.text
    assert reply.headers["x-corral-provider"] == "deepinfra"
    assert reply.json()["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert not _bedrock(runtime).requests  # type: ignore[attr-defined]
    plan = client.post("/v1/route/explain", json=_forced()).json()
    dropped = {d["provider"]: d["reason"] for d in plan["dropped"]}
    assert dropped["bedrock"] == "does not support tool_choice"


def test_forced_tool_choice_nowhere_servable_is_a_400_naming_it(gateway: tuple[httpx.Client, Runtime]) -> None:
    client, _ = gateway
    reply = client.post("/v1/chat/completions", json=_forced(providers={"only": ["bedrock"]}))
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["code"] == "unsupported_parameter" and error["param"] == "tool_choice"
    assert "retry-after" not in reply.headers


def test_a_refusal_falls_over_is_remembered_and_never_reaches_the_client(
    overclaiming: tuple[httpx.Client, Runtime],
) -> None:
    client, runtime = overclaiming
    reply = client.post("/v1/chat/completions", json=_forced())
    assert reply.status_code == 200, reply.text
    assert reply.headers["x-corral-provider"] == "deepinfra"
    assert reply.headers["x-corral-attempts"] == "2"
    sent = _bedrock(runtime).requests[-1].json  # type: ignore[attr-defined]
    assert sent["toolConfig"]["toolChoice"] == {"any": {}}
    assert "toolChoice" not in reply.text
    # Remembered: the next such request is not offered to Bedrock at all.
    before = len(_bedrock(runtime).requests)  # type: ignore[attr-defined]
    again = client.post("/v1/chat/completions", json=_forced())
    assert again.status_code == 200 and again.headers["x-corral-attempts"] == "1"
    assert len(_bedrock(runtime).requests) == before  # type: ignore[attr-defined]
    plan = client.post("/v1/route/explain", json=_forced()).json()
    reason = {d["provider"]: d["reason"] for d in plan["dropped"]}["bedrock"]
    assert reason.startswith("bedrock refused tool_choice as unsupported")
    metrics = client.get("/metrics").text
    assert 'corral_capability_miss_seconds{deployment="bedrock/llama-4-maverick",feature="tool_choice"}' in metrics
    # Requests that do not use the feature still go to Bedrock first.
    plain = client.post(
        "/v1/chat/completions",
        json={"model": MAVERICK, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8},
    )
    assert plain.status_code == 200 and plain.headers["x-corral-provider"] == "bedrock"


def test_every_refusal_is_a_400_naming_the_feature_not_the_providers_words(
    overclaiming: tuple[httpx.Client, Runtime],
) -> None:
    client, _ = overclaiming
    reply = client.post("/v1/chat/completions", json=_forced(providers={"only": ["bedrock"]}))
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["code"] == "unsupported_parameter" and error["param"] == "tool_choice"
    assert (
        error["message"] == f"no deployment of {MAVERICK} can serve this request: bedrock does not support tool_choice"
    )
