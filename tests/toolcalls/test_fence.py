"""The second fence (gateway/toolcalls/fence.py, cost.py): which checks leave the loop,
the CPU budget stopping them, and what the guard and the stream gate do with a stopped run."""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from gateway.toolcalls import Action, StreamGate, ToolGuard, fence, prepare
from gateway.toolcalls.cost import UNBOUNDED, answer_nodes, schema_weight
from gateway.toolcalls.fence import Fence, FenceLimits, fenced_check, runs_inline
from tests.toolcalls.helpers import call_chunks, request, tool

TYPICAL = '{"city": "Paris", "unit": "c"}'
#: A `$ref` that doubles the work at every level of the answer (2^40 here).
DOUBLING: dict[str, Any] = {
    "$defs": {"n": {"type": "array", "items": {"allOf": [{"$ref": "#/$defs/n"}, {"$ref": "#/$defs/n"}]}}},
    "type": "object",
    "properties": {"v": {"$ref": "#/$defs/n"}},
}
DEEP = '{"v":' + "[" * 40 + "]" * 40 + "}"


@pytest.fixture
def tight() -> Iterator[Fence]:
    """The process's fence with a 0.3 s CPU budget, stopped afterwards."""
    yield fence.configure(FenceLimits(cpu_budget_s=0.3, workers=1))
    fence.close()


def message(name: str, arguments: str) -> dict[str, Any]:
    call = {"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}
    return {"role": "assistant", "content": None, "tool_calls": [call]}


def test_weights_expand_references_and_recursion_is_unbounded() -> None:
    assert schema_weight({"type": "string", "enum": ["a", "b", "c"]}) == 5
    shared = {
        "$defs": {"p": {"type": "string"}},
        "properties": {"a": {"$ref": "#/$defs/p"}, "b": {"$ref": "#/$defs/p"}},
    }
    assert schema_weight(shared) > schema_weight({"properties": {"a": {}, "b": {}}})
    assert schema_weight(DOUBLING) == UNBOUNDED
    assert schema_weight({"$ref": "https://example.invalid/s.json"}) == UNBOUNDED
    assert schema_weight({"$ref": "#anchor"}) == UNBOUNDED
    assert answer_nodes(TYPICAL) == 5  # an upper bound: the object, two keys, two values


def test_typical_calls_run_inline_and_costly_ones_do_not() -> None:
    contract = prepare(request())
    assert contract is not None
    assert runs_inline(contract, message("get_weather", TYPICAL))
    big = orjson.dumps({"city": "x" * 20_000}).decode()
    assert not runs_inline(contract, message("get_weather", big))
    doubling = prepare(request(tools=[tool("f", DOUBLING)]))
    assert doubling is not None
    assert not runs_inline(doubling, message("f", '{"v": []}'))
    enum = prepare(request(tools=[tool("f", {"type": "array", "items": {"enum": list(range(500))}})]))
    assert enum is not None
    assert not runs_inline(enum, message("f", orjson.dumps(list(range(100))).decode()))


def test_a_contract_travels_to_the_child_as_its_schemas() -> None:
    contract = prepare(request())
    copy = pickle.loads(pickle.dumps(contract))
    assert copy == contract and copy.tools["get_weather"].is_valid({"city": "Paris"})


def test_the_budget_stops_a_run_and_the_child_serves_the_next(tight: Fence) -> None:
    contract = prepare(request(tools=[tool("f", DOUBLING)]))
    assert contract is not None

    async def both() -> tuple[Any, Any]:
        stopped = await fenced_check(contract, message("f", DEEP), "tool_calls", repair=True)
        fine = await fenced_check(contract, message("f", '{"v": [[]]}'), "tool_calls", repair=True)
        return stopped, fine

    stopped, fine = asyncio.run(both())
    assert stopped.over_budget and not stopped.valid
    assert stopped.errors == ("$: validation stopped: the check of this answer used its CPU budget (0.3 s)",)
    assert fine.valid and not fine.over_budget
    assert tight.stopped == 1 and tight.offloaded == 2 and len(tight.children) == 1


def test_a_stopped_run_is_never_reasked(tight: Fence) -> None:
    guard = ToolGuard(prepare(request(tools=[tool("f", DOUBLING)])), "retry", reasks=3)
    body = {"choices": [{"index": 0, "finish_reason": "tool_calls", "message": message("f", DEEP)}]}
    decision = asyncio.run(guard.acheck(body))
    assert decision.action is Action.FAIL and guard.verdict == "invalid"
    assert "CPU budget" in guard.failure().message


def test_a_stream_holds_a_costly_call_and_checks_it_off_the_loop(tight: Fence) -> None:
    """A call too costly to check on the loop is not sent early; the whole reply is checked
    by `settle()` under the budget, and a stopped run is a FAIL with nothing sent."""
    gate = StreamGate(ToolGuard(prepare(request(tools=[tool("f", DOUBLING)])), "retry", reasks=1))
    sent = [out for c in call_chunks([("call_1", "f", DEEP)], [5]) for out in gate.feed(c)]
    assert not any(c["choices"][0]["delta"].get("tool_calls") for c in sent)
    end = asyncio.run(gate.settle())
    assert end.action is Action.FAIL and end.chunks == []
    assert end.attempt is not None and end.attempt.over_budget


def test_a_costly_valid_stream_is_delivered_whole(tight: Fence) -> None:
    schema = {"type": "object", "properties": {"v": {"type": "array", "items": {"type": "integer"}}}}
    arguments = orjson.dumps({"v": list(range(5_000))}).decode()
    gate = StreamGate(ToolGuard(prepare(request(tools=[tool("f", schema)])), "retry"))
    for c in call_chunks([("call_1", "f", arguments)], [7, 900]):
        gate.feed(c)
    end = asyncio.run(gate.settle())
    assert end.action is Action.DELIVER
    delivered = "".join(
        d["function"].get("arguments", "") for c in end.chunks for d in c["choices"][0]["delta"].get("tool_calls") or ()
    )
    assert delivered == arguments and tight.offloaded == 1


def test_a_child_that_stops_answering_is_killed_and_replaced(tight: Fence) -> None:
    """The wall-clock backstop: a validation process that does not answer (stopped here
    with SIGSTOP, as one stuck in C code would be) is killed after the budget plus the
    grace, the run fails as over budget, and the next run gets a new process."""
    contract = prepare(request(tools=[tool("f", DOUBLING)]))
    assert contract is not None
    small = message("f", '{"v": [[]]}')

    async def scenario() -> tuple[Any, Any, int]:
        assert (await tight.check(contract, small, "tool_calls", repair=True)).valid
        (pid,) = tight.children
        os.kill(pid, signal.SIGSTOP)
        stuck = await tight.check(contract, small, "tool_calls", repair=True)
        fine = await tight.check(contract, small, "tool_calls", repair=True)
        return stuck, fine, pid

    stuck, fine, pid = asyncio.run(scenario())
    assert stuck.over_budget
    assert stuck.errors == ("$: validation stopped: its process did not answer within the budget (0.3 s) plus 2 s",)
    assert fine.valid and tight.children and tight.children != [pid]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_report_mode_delivers_a_stopped_run_flagged_invalid(tight: Fence) -> None:
    guard = ToolGuard(prepare(request(tools=[tool("f", DOUBLING)])), "report")
    body = {"choices": [{"index": 0, "finish_reason": "tool_calls", "message": message("f", DEEP)}]}
    decision = asyncio.run(guard.acheck(body))
    assert decision.action is Action.DELIVER and decision.body == body
    assert guard.verdict == "invalid"


def test_prometheus_counts_the_runs_sent_off_the_loop_and_those_stopped(tight: Fence) -> None:
    """`corral_tool_validation_offloaded_total{event="started"|"stopped"}` from the process's
    fence, folded at each drain as what was added since the last one."""
    from gateway.telemetry.metrics import LiveGauges, Metrics

    live = LiveGauges(
        breakers=lambda: (),
        cooldowns=lambda: (),
        pool=lambda: (),
        ledger_queue=lambda: 0,
        journal_bytes=lambda: 0,
        policy_reloads=lambda: (0, 0),
        fence_runs=fence.runs,
    )
    metrics = Metrics(live)

    def counted(event: str) -> float:
        return metrics.registry.get_sample_value("corral_tool_validation_offloaded_total", {"event": event}) or 0.0

    contract = prepare(request(tools=[tool("f", DOUBLING)]))
    assert contract is not None
    asyncio.run(fenced_check(contract, message("f", DEEP), "tool_calls", repair=True))
    metrics.drain()
    assert (counted("started"), counted("stopped")) == (1.0, 1.0)
    asyncio.run(fenced_check(contract, message("f", '{"v": [[]]}'), "tool_calls", repair=True))
    metrics.drain()
    metrics.drain()  # nothing new: nothing added twice
    assert (counted("started"), counted("stopped")) == (2.0, 1.0)
    assert fence.runs() == (2, 1)
