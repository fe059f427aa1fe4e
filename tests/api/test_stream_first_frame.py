"""A client that leaves right after a stream's first frame (the Responses API's
`response.created`, or a completions stream's echoed prompt) still gets the stream accounted
for: the relay is closed (ledger row, token bucket, upstream connection released)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

from gateway.api import completions, responses
from gateway.api.completions_out import TextShell
from gateway.api.responses import Keeper
from gateway.api.responses_out import EventStream, ResponseShell
from gateway.dispatch.relay import Relay
from gateway.metering.conversations import Conversations, MemoryConversations


class RelayDouble:
    """Stands in for a Relay: one batch of chunks, and whether `close` ran."""

    def __init__(self) -> None:
        self.closed = False
        self.error: dict[str, Any] | None = None
        self.status = "cancelled"
        self.ended = False
        self.gated = False

    async def batches(self) -> AsyncIterator[list[dict[str, Any]]]:
        yield [{"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}]}]

    async def close(self) -> None:
        self.closed = True


async def test_a_responses_stream_left_after_its_first_event_is_accounted_for() -> None:
    relay = RelayDouble()
    keep = Keeper(Conversations(MemoryConversations(), retention_s=60, threaded=False), "", [], wanted=True)
    events = responses._events(cast(Relay, relay), EventStream(ResponseShell("m", {})), keep)
    assert b"response.created" in await anext(events)
    await events.aclose()
    assert relay.closed


async def test_a_completions_stream_left_after_its_echo_is_accounted_for() -> None:
    relay = RelayDouble()
    events = completions._events(cast(Relay, relay), TextShell("m", 0, echo_prompt="Say hello"))
    assert b"Say hello" in await anext(events)
    await events.aclose()
    assert relay.closed
