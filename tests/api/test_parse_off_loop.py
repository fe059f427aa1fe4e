"""A large request body is parsed in a worker thread, so checking a large tool schema does
not hold the event loop (and every other request of the worker); a small one is parsed
in place, where a thread hop would cost more than the parse."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import orjson

from gateway.api import parse
from gateway.catalogue.deployments import load_catalogue

CATALOGUE = load_catalogue()


def _body(patterns: int, variant: str) -> bytes:
    """A chat body whose one tool schema has `patterns` patternProperties (each new
    `variant` is a schema the process has not compiled yet)."""
    schema = {
        "type": "object",
        "patternProperties": {f"^{variant}{i}x[0-9]*$": {"type": "integer"} for i in range(patterns)},
    }
    tool = {"type": "function", "function": {"name": "f", "parameters": schema}}
    return orjson.dumps({"model": "llama-4-scout", "messages": [{"role": "user", "content": "hi"}], "tools": [tool]})


def test_only_a_large_body_leaves_the_calling_thread(monkeypatch: Any) -> None:
    threads: list[threading.Thread] = []
    real = parse.parse_chat

    def recording(raw: bytes, catalogue: Any, request_id: str) -> Any:
        threads.append(threading.current_thread())
        return real(raw, catalogue, request_id)

    monkeypatch.setattr(parse, "parse_chat", recording)
    small, large = _body(3, "s"), _body(600, "l")
    assert len(small) < parse.OFF_LOOP_BYTES <= len(large)

    async def both() -> None:
        assert (await parse.parse_chat_request(small, CATALOGUE, "r1")).model == "llama-4-scout"
        assert (await parse.parse_chat_request(large, CATALOGUE, "r2")).model == "llama-4-scout"

    asyncio.run(both())
    assert threads[0] is threading.main_thread()
    assert threads[1] is not threading.main_thread()


def test_the_loop_keeps_running_while_a_large_schema_is_checked() -> None:
    started = time.perf_counter()
    parse.parse_chat(_body(1_000, "a"), CATALOGUE, "inline")
    inline_s = time.perf_counter() - started

    async def measured() -> float:
        longest = 0.0
        done = False

        async def ticker() -> None:
            nonlocal longest
            last = time.perf_counter()
            while not done:
                await asyncio.sleep(0.005)
                now = time.perf_counter()
                longest, last = max(longest, now - last), now

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0.02)
        await parse.parse_chat_request(_body(1_000, "b"), CATALOGUE, "off-loop")
        done = True
        await task
        return longest

    longest_gap_s = asyncio.run(measured())
    # Inline, the loop would have stood still for the whole check (inline_s); in a thread it
    # gets the interpreter back at every switch interval.
    assert longest_gap_s < inline_s / 2, (longest_gap_s, inline_s)
