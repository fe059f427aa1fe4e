"""Issue 18, reproduction 1: a client's tool schema `pattern` must never freeze a worker.
The model's answer (29 `a`s and a `!` against `^(a+)+$`) took Python's backtracking `re`
88 s on the event loop; patterns run by RE2 are linear. Patterns RE2 cannot run
(lookaround, backreferences) are refused before any backend is called."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.faults.conftest import open_rig
from tests.faults.harness import FakePark, fault_settings
from tests.faults.probe import probing_healthz
from tests.faults.rogue import RogueUpstream
from tests.faults.traffic import chat_body

#: The slowest /healthz answer allowed while the hostile validations run.
HEALTH_BOUND_S = 1.0


def _answer(arguments: dict[str, Any]) -> bytes:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "f", "arguments": orjson.dumps(arguments).decode()},
    }
    return orjson.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "llama-4-maverick",
            "choices": [
                {"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "tool_calls": [call]}}
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
        }
    )


def _tools(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": "f", "parameters": schema}}]


EVIL = "a" * 29 + "!"


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"v": {"type": "string", "pattern": "^(a+)+$"}}},
        {"type": "object", "patternProperties": {"^(a|aa)+$": {"type": "integer"}}},
    ],
    ids=["pattern", "patternProperties"],
)
def test_catastrophic_pattern_never_holds_the_loop(park: FakePark, tmp_path: Path, schema: dict[str, Any]) -> None:
    """Availability: the model answers with a value that makes a backtracking engine run for
    minutes; every validation (and re-ask) finishes, and /healthz keeps answering fast."""
    arguments = {"v": EVIL} if "properties" in schema else {EVIL: "x"}
    fakes = {"deepinfra": park.start(RogueUpstream(_answer(arguments))), "together": park.add("together")}
    rig = open_rig(fault_settings(tmp_path, fakes, order=("deepinfra",)), fakes)
    with probing_healthz(rig.url) as probe:
        replies = rig.traffic.burst(lambda _: chat_body(tools=_tools(schema)), n=12, workers=3)
    assert all(r.status in (200, 502) for r in replies), [r.status for r in replies]
    assert probe.answered > 0 and probe.failed == 0, probe
    assert probe.slowest_s < HEALTH_BOUND_S, probe
    rig.finish()


@pytest.mark.parametrize("source", ["^(?=a)a+$", "^(?!b).*$", "(a)\\1", "(?<=x)y"])
def test_pattern_re2_cannot_run_is_refused_before_any_backend(park: FakePark, tmp_path: Path, source: str) -> None:
    """Honest failure: lookaround and backreferences are refused with 400
    invalid_tool_schema naming the tool's parameters; no backend is called."""
    fakes = {"deepinfra": park.start(RogueUpstream(_answer({"v": "a"}))), "together": park.add("together")}
    rig = open_rig(fault_settings(tmp_path, fakes), fakes)
    schema = {"type": "object", "properties": {"v": {"type": "string", "pattern": source}}}
    reply = rig.traffic.send(chat_body(tools=_tools(schema)))
    assert reply.status == 400, reply.body
    assert reply.body["error"]["code"] == "invalid_tool_schema"
    assert reply.body["error"]["param"] == "tools[0].function.parameters"
    assert "linear time" in reply.body["error"]["message"]
    assert not fakes["deepinfra"].requests and not fakes["together"].requests
    rig.finish()


def test_response_format_pattern_is_linear_too(park: FakePark, tmp_path: Path) -> None:
    """response_format json_schema patterns go through the same engine: a lookahead is a 400."""
    fakes = {"deepinfra": park.add("deepinfra")}
    rig = open_rig(fault_settings(tmp_path, fakes), fakes)
    schema = {"type": "object", "properties": {"v": {"type": "string", "pattern": "(?=a)"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    reply = rig.traffic.send(chat_body(response_format=fmt))
    assert reply.status == 400 and reply.body["error"]["param"] == "response_format.json_schema.schema"
    assert not fakes["deepinfra"].requests
    with httpx.Client(base_url=rig.url) as client:
        assert client.get("/healthz").status_code == 200
    rig.finish()
