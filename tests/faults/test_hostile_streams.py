"""Issue 18, reproduction 2: an upstream sending one endless SSE event. Decoding used to
re-join the pending buffer on every read (a 200 MB event took 33 s of CPU and 690 MB of
RSS, and was relayed whole). Now an event over `max_event_bytes` (4 MiB) makes the
upstream malformed: the request falls over before the first byte, or the client gets a
clean SSE error after it; memory stays bounded and /healthz keeps answering."""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from gateway.config import StreamLimits
from tests.faults.conftest import open_rig
from tests.faults.harness import CLIENT_TIMEOUT_S, FakePark, fault_settings
from tests.faults.probe import peak_rss, probing_healthz
from tests.faults.rogue import FloodingStream
from tests.faults.traffic import assert_all_served, chat_body

MIB = 1024 * 1024
#: What each hostile stream offers: far more than the process may grow by.
FLOOD = 300 * MIB
#: RSS growth allowed while three such streams run (each read is bounded by the 4 MiB event limit).
RSS_CEILING = 120 * MIB
HEALTH_BOUND_S = 1.0

FIRST = orjson.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "llama-4-maverick",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"}, "finish_reason": None}],
    }
)


def test_huge_event_before_the_first_byte_falls_over(park: FakePark, tmp_path: Path) -> None:
    """Availability and bounded memory: DeepInfra (preferred) opens every stream with one
    endless event; each stream is served whole by Together, DeepInfra's connection is cut
    within a few MiB, RSS grows by less than 120 MiB with three at a time, /healthz
    answers within 1 s throughout."""
    rogue = park.start(FloodingStream(FLOOD))
    fakes = {"deepinfra": rogue, "together": park.add("together")}
    rig = open_rig(fault_settings(tmp_path, fakes, order=("deepinfra",)), fakes)
    with peak_rss() as peak, probing_healthz(rig.url) as probe:
        replies = rig.traffic.burst(chat_body(stream=True), n=6, workers=3)
    assert_all_served(replies, by="together")
    assert all(r.stream_error is None and "[DONE]" in r.text for r in replies)
    assert rogue.requests and all(sent < 64 * MIB for sent in rogue.sent), rogue.sent
    assert peak.growth < RSS_CEILING, f"RSS grew by {peak.growth / MIB:.0f} MiB"
    assert probe.failed == 0 and probe.slowest_s < HEALTH_BOUND_S, probe
    rig.finish()


def test_huge_event_after_the_first_byte_is_a_clean_sse_error(park: FakePark, tmp_path: Path) -> None:
    """Honest failure: after a first real chunk DeepInfra floods; the client has the chunk,
    then an SSE error event naming DeepInfra and the event limit, and no [DONE]."""
    rogue = park.start(FloodingStream(FLOOD, first=b"data: " + FIRST + b"\n\n"))
    fakes = {"deepinfra": rogue, "together": park.add("together")}
    rig = open_rig(fault_settings(tmp_path, fakes, order=("deepinfra",)), fakes)
    with peak_rss() as peak:
        reply = rig.traffic.send(chat_body(stream=True))
    assert reply.status == 200 and reply.provider == "deepinfra"
    assert any(isinstance(e, dict) and e.get("choices") for e in reply.body)
    error = reply.stream_error
    assert error is not None and "deepinfra" in error["message"] and "limit" in error["message"], reply.text[-300:]
    assert "[DONE]" not in reply.text
    assert peak.growth < RSS_CEILING
    rig.finish()


def test_trickled_event_hits_the_event_idle_timeout(park: FakePark, tmp_path: Path) -> None:
    """Honest failure: after a first chunk DeepInfra trickles one byte every 50 ms (each read
    beats the first-byte timeout); with `event_idle_s` 0.5 the client gets an SSE error
    naming the idle timeout within a few seconds, not at the 30 s total timeout."""
    rogue = park.start(FloodingStream(FLOOD, first=b"data: " + FIRST + b"\n\n", piece=b"a", pause_s=0.05))
    fakes = {"deepinfra": rogue, "together": park.add("together")}
    settings = fault_settings(tmp_path, fakes, order=("deepinfra",))
    settings = settings.model_copy(update={"streams": StreamLimits(event_idle_s=0.5)})
    rig = open_rig(settings, fakes)
    started = time.monotonic()
    reply = rig.traffic.send(chat_body(stream=True))
    assert time.monotonic() - started < CLIENT_TIMEOUT_S
    error = reply.stream_error
    assert error is not None and "no complete event" in error["message"], reply.text[-300:]
    rig.finish()
