"""Malformed upstream answers: invalid JSON, the wrong shape, a huge body. A garbled answer
says nothing about the request, so another backend must get it."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from gateway.fakes.script import Behaviour
from tests.faults.conftest import Rig, open_rig
from tests.faults.harness import SCOUT, FakePark, fault_settings
from tests.faults.rogue import RogueUpstream
from tests.faults.traffic import assert_all_served, assert_honest_failure, chat_body, until

MIB = 1024 * 1024
WRONG_SHAPE = orjson.dumps({"id": "chatcmpl-1", "object": "chat.completion", "choices": "none today"})
#: 40 MiB of JSON-looking bytes that never close (the adapters refuse answers over 32 MiB unread).
HUGE = b'{"choices": [' + b'{"x": 1},' * (40 * MIB // 9)


@pytest.mark.parametrize("stream", [False, True])
def test_invalid_json_falls_over_and_traffic_returns(hosted: Rig, stream: bool) -> None:
    """Availability and recovery: DeepInfra's answers are cut-off JSON (whole answers) or an
    undecodable event after the first chunk (streams); whole answers fall over to Together,
    every one served; once DeepInfra answers properly it is back."""
    primary = hosted.fakes["deepinfra"]
    primary.script.default = Behaviour(error="malformed_body")
    replies = hosted.traffic.burst(chat_body(stream=stream), n=24, workers=2)
    if stream:
        assert all(r.status == 200 and (r.stream_error or "[DONE]" in r.text) for r in replies)
        assert any(r.provider == "together" for r in replies), "the breaks tripped deepinfra's breaker"
    else:
        assert_all_served(replies, by="together")
    primary.script.clear()
    until(lambda: hosted.traffic.send(chat_body(stream=stream)).provider == "deepinfra", "back on deepinfra")
    hosted.finish()


@pytest.mark.parametrize(
    ("body", "chunked"),
    [(WRONG_SHAPE, False), (HUGE, False), (HUGE, True), (b"<html>502 Bad Gateway</html>", False)],
    ids=["shape", "huge", "huge-chunked", "html"],
)
def test_malformed_answer_falls_over(park: FakePark, tmp_path: Path, body: bytes, chunked: bool) -> None:
    """Availability: DeepInfra's address answers 200 with the wrong shape, a 40 MiB body that
    never parses (with a Content-Length or chunked), or an HTML page; every request is
    served by Together."""
    fakes = {"deepinfra": park.start(RogueUpstream(body, chunked=chunked)), "together": park.add("together")}
    rig = open_rig(fault_settings(tmp_path, fakes), fakes)
    # Two at a time for the huge bodies: gateway, upstream and clients share one process here.
    replies = rig.traffic.burst(chat_body(), n=12, workers=2 if len(body) > MIB else 4)
    assert_all_served(replies, by="together")
    assert any(r.attempts == 2 for r in replies)
    rig.finish()


@pytest.mark.parametrize(
    ("body", "chunked"),
    [(orjson.dumps({"output": {"message": "nope"}}), False), (HUGE, False), (HUGE, True)],
    ids=["shape", "huge", "huge-chunked"],
)
def test_malformed_bedrock_answer_falls_over(park: FakePark, tmp_path: Path, body: bytes, chunked: bool) -> None:
    """Availability: Bedrock (preferred here) answers Converse with the wrong shape or a
    40 MiB body; every request is served by DeepInfra."""
    rogue = park.start(RogueUpstream(body, chunked=chunked, bedrock=True))
    fakes = {"bedrock": rogue, "deepinfra": park.add("deepinfra")}
    rig = open_rig(fault_settings(tmp_path, fakes, order=("bedrock",)), fakes)
    replies = rig.traffic.burst(chat_body(model=SCOUT), n=12, workers=2)
    assert_all_served(replies, by="deepinfra")
    assert any(r.attempts == 2 for r in replies) and rogue.requests
    rig.finish()


def test_malformed_everywhere_gets_an_honest_502(park: FakePark, tmp_path: Path) -> None:
    """Honest failure: when both backends answer garbage the client gets a 502 naming both."""
    fakes = {"deepinfra": park.start(RogueUpstream(WRONG_SHAPE)), "together": park.add("together")}
    fakes["together"].script.default = Behaviour(error="malformed_body")
    rig = open_rig(fault_settings(tmp_path, fakes), fakes)
    assert_honest_failure(rig.traffic.send(chat_body()), {"deepinfra", "together"}, frozenset({502}))
    rig.finish()
