"""Measure what tool-call validation costs per call (no timed asserts; prints numbers).

.venv/bin/python -m tests.toolcalls.bench_validation
"""

from __future__ import annotations

import asyncio
import time
import timeit
from collections.abc import Callable
from typing import Any

import orjson

from gateway.toolcalls import Contract, StreamGate, ToolGuard, check_message, fence, new_call_id, prepare
from gateway.toolcalls.calls import check_call
from gateway.toolcalls.cost import answer_nodes
from gateway.toolcalls.fence import FenceLimits, runs_inline
from tests.toolcalls.helpers import call, chunk, completion, tool

#: A typical tool: five properties, an enum, bounds, a date format, an array of enums.
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 1},
        "unit": {"type": "string", "enum": ["c", "f"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 14},
        "date": {"type": "string", "format": "date"},
        "include": {"type": "array", "items": {"type": "string", "enum": ["wind", "rain", "uv"]}, "uniqueItems": True},
    },
    "required": ["city", "unit"],
    "additionalProperties": False,
}
ARGUMENTS = orjson.dumps({"city": "Paris", "unit": "c", "days": 3, "date": "2026-05-01", "include": ["wind", "rain"]})
BODY = {"messages": [{"role": "user", "content": "hi"}], "tools": [tool("get_weather", SCHEMA)]}


def per_call_us(fn: Callable[[], object], number: int = 20_000) -> float:
    """Best of five runs, in microseconds per call."""
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def main() -> None:
    contract = prepare(BODY)
    assert contract is not None
    arguments = ARGUMENTS.decode()
    answer = completion(tool_calls=[call("get_weather", arguments)], finish="tool_calls")
    broken = completion(tool_calls=[call("get_weather", arguments.replace('"', "'"))], finish="tool_calls")
    text = chunk({"content": "Paris is sunny."})
    gate = StreamGate(ToolGuard(contract))
    gate.feed(chunk({"role": "assistant", "content": ""}))
    schema = contract.tools["get_weather"]
    names = ("get_weather",)
    rows = [
        (
            "check one valid call (parse + schema)",
            lambda: check_call(contract, 0, "c", "get_weather", arguments, allowed=names, repair=True),
        ),
        ("guard.check of a whole valid completion", lambda: ToolGuard(contract).check(answer)),
        ("prepare(body), schema already cached", lambda: prepare(BODY)),
        ("jsonschema alone (no fast path)", lambda: schema.validator.is_valid(orjson.loads(ARGUMENTS))),
        ("stream gate: one content chunk", lambda: gate.feed(text)),
        ("repair path: single-quoted arguments", lambda: ToolGuard(contract).check(broken)),
    ]
    message = answer["choices"][0]["message"]
    rows.append(("estimate: inline or off the loop (fence)", lambda: runs_inline(contract, message)))
    for label, fn in rows:
        print(f"{label:45s} {per_call_us(fn, 2_000 if 'repair' in label else 20_000):8.1f} µs")
    offloaded = asyncio.run(_offloaded_us(contract, message))
    print(f"{'same check in a validation process (round trip)':45s} {offloaded:8.1f} µs")
    print(f"{'worst shape per estimated unit (enum x array)':45s} {_enum_unit_us():8.3f} µs")


async def _offloaded_us(contract: Contract, message: dict[str, Any], number: int = 500) -> float:
    """One check handed to a validation process and awaited (the process already started)."""
    validation = fence.configure(FenceLimits())
    try:
        for _ in range(20):
            await validation.check(contract, message, "tool_calls", repair=True)
        started = time.perf_counter()
        for _ in range(number):
            await validation.check(contract, message, "tool_calls", repair=True)
        return (time.perf_counter() - started) / number * 1e6
    finally:
        fence.close()


def _enum_unit_us() -> float:
    """Inline cost per estimated unit of 100 strings against a 200-member enum (all invalid)."""
    schema = {
        "type": "object",
        "properties": {"v": {"type": "array", "items": {"enum": [f"o{i}" for i in range(200)]}}},
    }
    contract = prepare({"messages": [], "tools": [tool("f", schema)]})
    assert contract is not None
    arguments = orjson.dumps({"v": [f"x{i}" for i in range(100)]}).decode()
    message = completion(tool_calls=[call("f", arguments)], finish="tool_calls")["choices"][0]["message"]
    units = contract.tools["f"].weight * answer_nodes(arguments)
    return (
        per_call_us(lambda: check_message(contract, message, "tool_calls", repair=True, new_id=new_call_id), 20) / units
    )


if __name__ == "__main__":
    main()
