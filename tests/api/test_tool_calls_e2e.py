"""Tool calls end to end: the fakes return bad calls first, the gateway repairs or
re-asks, and the official `openai` client gets calls that parse and validate."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import jsonschema
import openai
import pytest
from openai import OpenAI

from gateway.fakes.script import Behaviour
from gateway.metering.rows import ledger_rows
from tests.api.conftest import SimulatedGateway

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
    "required": ["city", "unit"],
    "additionalProperties": False,
}
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": SCHEMA}}
MESSAGES = [{"role": "user", "content": "What's the weather in Paris? Use get_weather."}]


def client(gateway: SimulatedGateway) -> OpenAI:
    return OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0, timeout=30)


def ask(gateway: SimulatedGateway, providers: list[str], **extra: object) -> object:
    return client(gateway).chat.completions.with_raw_response.create(
        model="llama-4-maverick",
        messages=MESSAGES,  # type: ignore[arg-type]
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice="required",
        extra_body={"corral": {"providers": {"only": providers}, **extra}},
    )


def valid_call(completion: object) -> dict[str, object]:
    call = completion.choices[0].message.tool_calls[0]  # type: ignore[attr-defined]
    assert call.function.name == "get_weather"
    args: dict[str, object] = json.loads(call.function.arguments)
    jsonschema.validate(args, SCHEMA)
    return args


def test_invalid_call_is_reasked_and_the_reask_is_billed(gateway: SimulatedGateway) -> None:
    gateway.fake("deepinfra").script.push(Behaviour(tool_args="schema_invalid"))
    raw = ask(gateway, ["deepinfra"])
    valid_call(raw.parse())  # type: ignore[attr-defined]
    headers = raw.headers  # type: ignore[attr-defined]
    assert headers["x-corral-tool-validation"] == "retried:1"
    assert headers["x-corral-attempts"] == "2"
    sent = gateway.requests("deepinfra")
    assert len(sent) == 2
    reask_messages = sent[1].json["messages"]
    assert "Fix the errors and try again." in json.dumps(reask_messages)
    event = gateway.runtime.sink.events[-1]  # type: ignore[union-attr]
    assert event.tool_validation == "retried:1"
    reasks = [a for a in event.attempts if a.reask]
    assert len(reasks) == 1 and reasks[0].completion_tokens > 0 and reasks[0].cost_usd > 0


def test_syntax_errors_are_repaired_without_a_round_trip(gateway: SimulatedGateway) -> None:
    gateway.fake("deepinfra").script.push(Behaviour(tool_args="malformed"))
    raw = ask(gateway, ["deepinfra"])
    valid_call(raw.parse())  # type: ignore[attr-defined]
    verdict = raw.headers["x-corral-tool-validation"]  # type: ignore[attr-defined]
    assert verdict in {"repaired", "retried:1"}
    if verdict == "repaired":
        assert len(gateway.requests("deepinfra")) == 1


def test_pythonic_text_becomes_a_real_tool_call(gateway: SimulatedGateway) -> None:
    gateway.fake("deepinfra").script.push(Behaviour(tool_format="pythonic"))
    raw = ask(gateway, ["deepinfra"])
    completion = raw.parse()  # type: ignore[attr-defined]
    valid_call(completion)
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.choices[0].message.content is None


def test_still_invalid_after_the_budget_is_a_502_listing_every_attempt(gateway: SimulatedGateway) -> None:
    for provider in ("deepinfra", "together"):
        gateway.fake(provider).script.default = Behaviour(tool_args="schema_invalid")
    with pytest.raises(openai.APIStatusError) as failed:
        ask(gateway, ["deepinfra", "together"])
    assert failed.value.status_code == 502
    body = failed.value.body
    assert isinstance(body, dict) and body["code"] == "tool_call_validation_failed"
    where = [a["deployment"].split("/")[0] for a in body["attempts"]]
    assert where == ["deepinfra", "deepinfra", "together", "together"], "first try + one re-ask on each"
    assert all(a["errors"] for a in body["attempts"])
    event = gateway.runtime.sink.events[-1]  # type: ignore[union-attr]
    assert event.status == "error"
    # Each deployment's first answer was re-asked; its second, with the budget spent, was not.
    assert [(a.provider, a.reask) for a in event.attempts] == [
        ("deepinfra", True),
        ("deepinfra", False),
        ("together", True),
        ("together", False),
    ]
    rows = ledger_rows(event, datetime.now(UTC)).attempts
    assert [row["reask"] for row in rows] == [True, False, True, False]


def test_report_mode_passes_the_call_through_flagged(gateway: SimulatedGateway) -> None:
    gateway.fake("deepinfra").script.push(Behaviour(tool_args="schema_invalid"))
    raw = ask(gateway, ["deepinfra"], tool_validation="report")
    assert raw.headers["x-corral-tool-validation"] == "invalid"  # type: ignore[attr-defined]
    assert len(gateway.requests("deepinfra")) == 1


def test_invalid_tool_schema_is_refused_before_any_backend(gateway: SimulatedGateway) -> None:
    broken = {"type": "function", "function": {"name": "f", "parameters": {"type": "objekt"}}}
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "llama-4-maverick", "messages": MESSAGES, "tools": [WEATHER, broken]},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_tool_schema"
    assert error["param"] == "tools[1].function.parameters"
    assert not any(gateway.requests(p) for p in ("deepinfra", "together", "bedrock", "vllm"))


def test_streamed_reask_continues_the_same_stream(gateway: SimulatedGateway) -> None:
    pool_maverick = next(
        f for f in gateway.runtime.fakes if f.provider == "vllm" and "Maverick" in getattr(f, "model_id", "")
    )
    pool_maverick.script.push(Behaviour(tool_args="schema_invalid"))
    stream = client(gateway).chat.completions.create(
        model="llama-4-maverick",
        messages=MESSAGES,  # type: ignore[arg-type]
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice="required",
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"corral": {"providers": {"only": ["vllm"]}}},
    )
    arguments, names, verdict = "", [], None
    for chunk in stream:
        extra = chunk.model_extra or {}
        if "x_corral" in extra:
            verdict = extra["x_corral"].get("tool_validation")
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or ():
                if delta.function and delta.function.name:
                    names.append(delta.function.name)
                arguments += (delta.function.arguments or "") if delta.function else ""
    assert names == ["get_weather"], "one well-formed call, the invalid one never reached the client"
    jsonschema.validate(json.loads(arguments), SCHEMA)
    assert verdict == "retried:1"
    assert len(pool_maverick.requests) == 2


def test_failure_kinds_are_counted_per_deployment(gateway: SimulatedGateway) -> None:
    gateway.fake("deepinfra").script.push(Behaviour(tool_args="schema_invalid"))
    ask(gateway, ["deepinfra"])
    text = httpx.get(gateway.url + "/metrics").text
    line = next(row for row in text.splitlines() if row.startswith("corral_tool_call_failures_total{"))
    assert 'provider="deepinfra"' in line and 'kind="schema_violation"' in line


def test_a_pool_reask_carries_its_constraint_on_the_wire(gateway: SimulatedGateway) -> None:
    """One function failed: the re-ask to vLLM carries `response_format` json_schema over that
    function's call, as the replica received it (several: see tests/providers/test_vllm.py)."""
    for fake in (f for f in gateway.runtime.fakes if f.provider == "vllm"):
        fake.script.push(Behaviour(tool_args="schema_invalid"))
    raw = ask(gateway, ["vllm"])
    valid_call(raw.parse())  # type: ignore[attr-defined]
    assert raw.headers["x-corral-tool-validation"] == "retried:1"  # type: ignore[attr-defined]
    first, reask = gateway.requests("vllm")[-2:]
    assert "response_format" not in first.json
    assert reask.json["tool_choice"] == "auto"
    spec = reask.json["response_format"]["json_schema"]
    assert spec["name"] == "get_weather" and spec["schema"]["properties"]["name"] == {"const": "get_weather"}
