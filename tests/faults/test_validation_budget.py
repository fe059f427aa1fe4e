"""Issue 18, the second fence: a validation run that could be expensive leaves the event
loop and is stopped by a CPU budget. Every pattern here is one RE2 accepts; the cost is
jsonschema's own (a long enum against a long array, a `$ref` doubling per level, many
patternProperties, uniqueItems over thousands of objects). Inline, each held the worker
(and /healthz) for seconds to hours; now /healthz keeps answering, the budget ends the
run, and the client gets 502 tool_call_validation_failed naming the budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.config import Settings, ValidationLimits
from gateway.fakes.server import FakeServer
from gateway.toolcalls import fence
from tests.faults.conftest import open_rig
from tests.faults.harness import POLICY, FakePark, fault_settings
from tests.faults.probe import probing_healthz
from tests.faults.rogue import RogueUpstream
from tests.faults.traffic import chat_body

#: The slowest /healthz answer allowed while the expensive validations run.
HEALTH_BOUND_S = 1.0
#: The CPU budget per validation run in these tests.
BUDGET_S = 0.5
#: The policy deadline here (the suite's 2 s would cut the second deployment's turn).
DEADLINE_MS = 30_000


def _answer(arguments: str) -> bytes:
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    return orjson.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "llama-4-maverick",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": message}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
        }
    )


def _tools(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": "f", "parameters": schema}}]


def _settings(tmp_path: Path, fakes: dict[str, FakeServer]) -> Settings:
    settings = fault_settings(tmp_path, fakes)
    # Every run may take its whole budget, a few at a time on a shared machine: a deadline
    # long enough that each deployment gets its turn.
    (tmp_path / "policy.yaml").write_text(POLICY.format(name="faults", order=[], deadline_ms=DEADLINE_MS))
    return settings.model_copy(update={"validation": ValidationLimits(cpu_budget_s=BUDGET_S, workers=2)})


def _enum_bomb() -> tuple[dict[str, Any], str]:
    schema = {
        "type": "object",
        "properties": {"v": {"type": "array", "items": {"enum": [f"o{i}" for i in range(10_000)]}}},
    }
    return schema, orjson.dumps({"v": [f"x{i}" for i in range(4_000)]}).decode()


def _ref_bomb() -> tuple[dict[str, Any], str]:
    node = {"type": "array", "items": {"allOf": [{"$ref": "#/$defs/n"}, {"$ref": "#/$defs/n"}]}}
    schema = {"$defs": {"n": node}, "type": "object", "properties": {"v": {"$ref": "#/$defs/n"}}}
    return schema, '{"v":' + "[" * 40 + "]" * 40 + "}"


def _pattern_properties() -> tuple[dict[str, Any], str]:
    schema = {"type": "object", "patternProperties": {f"^k{i}x[0-9]*$": {"type": "integer"} for i in range(1_000)}}
    return schema, orjson.dumps({f"key{i}": i for i in range(5_000)}).decode()


def _unique_objects() -> tuple[dict[str, Any], str]:
    schema = {"type": "object", "properties": {"v": {"type": "array", "uniqueItems": True}}}
    return schema, orjson.dumps({"v": [{"a": i} for i in range(8_000)]}).decode()


@pytest.mark.parametrize(
    "attack",
    [_enum_bomb, _ref_bomb, _pattern_properties, _unique_objects],
    ids=["enum", "ref", "patternProperties", "uniqueItems"],
)
def test_expensive_validation_never_holds_the_loop_and_the_budget_stops_it(
    park: FakePark, tmp_path: Path, attack: Any
) -> None:
    """Availability and honest failure: both backends answer with arguments whose check
    would run for seconds or more; /healthz answers within 1 s throughout, each run is
    stopped by the CPU budget, no re-ask spends it again, and the client gets 502
    tool_call_validation_failed naming the budget (one ledger row per request)."""
    schema, arguments = attack()
    body = _answer(arguments)
    fakes: dict[str, FakeServer] = {
        "deepinfra": park.start(RogueUpstream(body)),
        "together": park.start(RogueUpstream(body)),
    }
    rig = open_rig(_settings(tmp_path, fakes), fakes)
    with probing_healthz(rig.url) as probe:
        replies = rig.traffic.burst(lambda _: chat_body(tools=_tools(schema)), n=3, workers=3)
    assert probe.answered > 0 and probe.failed == 0, probe
    assert probe.slowest_s < HEALTH_BOUND_S, probe
    for reply in replies:
        assert reply.status == 502, reply.body
        error = reply.body["error"]
        assert error["code"] == "tool_call_validation_failed"
        assert "CPU budget (0.5 s)" in error["message"], error["message"]
        # One answer per deployment, none re-asked: the budget is spent once per answer.
        assert [len(a["errors"]) for a in error["attempts"]] == [1, 1], error["attempts"]
        assert reply.attempts == 2
    assert fence.current().stopped >= len(replies) * 2
    assert sum(len(f.requests) for f in fakes.values()) == len(replies) * 2
    rig.finish()


def test_big_valid_answer_is_checked_off_the_loop_and_delivered(park: FakePark, tmp_path: Path) -> None:
    """A large answer that is valid is checked in a validation process (not on the loop)
    and delivered unchanged with the verdict `valid`."""
    schema = {"type": "object", "properties": {"v": {"type": "array", "items": {"type": "integer"}}}}
    arguments = orjson.dumps({"v": list(range(20_000))}).decode()
    fakes: dict[str, FakeServer] = {"deepinfra": park.start(RogueUpstream(_answer(arguments)))}
    rig = open_rig(_settings(tmp_path, fakes), fakes)
    before = fence.current().offloaded
    reply = rig.traffic.send(chat_body(tools=_tools(schema)))
    assert reply.status == 200, reply.body
    call = reply.body["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["arguments"] == arguments
    assert fence.current().offloaded == before + 1
    rig.finish()


def test_typical_answers_are_checked_inline(park: FakePark, tmp_path: Path) -> None:
    """The common case pays no hop: typical tool calls are checked on the loop, and no
    validation process is ever started for them."""
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
        "required": ["city"],
    }
    arguments = orjson.dumps({"city": "Paris", "unit": "c"}).decode()
    fakes: dict[str, FakeServer] = {"deepinfra": park.start(RogueUpstream(_answer(arguments)))}
    rig = open_rig(_settings(tmp_path, fakes), fakes)
    replies = rig.traffic.burst(lambda _: chat_body(tools=_tools(schema)), n=20, workers=4)
    assert all(r.status == 200 for r in replies), [r.body for r in replies]
    assert fence.current().offloaded == 0
    assert fence.current().children == []
    rig.finish()
