"""Streamed tool calls reach clients in OpenAI's shape whatever the backend sends: Together's
chunk type repeats a call's id, type and name on every delta, and clients that build a call
by concatenating deltas (as OpenAI's stream format invites) must still see each once."""

from __future__ import annotations

import json

import httpx
import pytest
from openai import OpenAI

from tests.api.conftest import SimulatedGateway

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
BODY = {
    "model": "llama-4-maverick",
    "stream": True,
    "messages": [{"role": "user", "content": "What's the weather in Paris?"}],
    "tools": [WEATHER],
    "tool_choice": "required",
}


def _tool_deltas(sse: str) -> list[dict[str, object]]:
    chunks = [json.loads(line[6:]) for line in sse.splitlines() if line.startswith("data: {")]
    return [call for c in chunks for choice in c["choices"] for call in choice["delta"].get("tool_calls") or ()]


@pytest.mark.parametrize("validation", ["off", "retry"])
def test_a_call_repeated_on_every_delta_reaches_the_client_once(gateway: SimulatedGateway, validation: str) -> None:
    corral = {"providers": {"only": ["together"]}, "tool_validation": validation}
    reply = httpx.post(gateway.url + "/v1/chat/completions", json={**BODY, "corral": corral}, timeout=30)
    assert reply.status_code == 200 and reply.headers["x-corral-provider"] == "together"
    deltas = _tool_deltas(reply.text)
    assert len(deltas) >= 2
    names = "".join(str(d.get("function", {}).get("name", "")) for d in deltas)  # type: ignore[union-attr]
    ids = "".join(str(d.get("id", "")) for d in deltas)
    assert names == "get_weather" and ids.startswith("call_") and ids == deltas[0]["id"]
    arguments = "".join(str(d.get("function", {}).get("arguments", "")) for d in deltas)  # type: ignore[union-attr]
    assert json.loads(arguments)["city"]


def test_openai_stream_helper_gets_one_call(gateway: SimulatedGateway) -> None:
    oa = OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0, timeout=30)
    with oa.chat.completions.stream(
        model="llama-4-maverick",
        messages=[{"role": "user", "content": "What's the weather in Paris?"}],
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice="required",
        extra_body={"corral": {"providers": {"only": ["together"]}}},
    ) as stream:
        final = stream.get_final_completion()
    (call,) = final.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"
