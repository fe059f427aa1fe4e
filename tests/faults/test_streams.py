"""Streams that break: cut before the first byte (fall over, the client never knows), cut
after it (a proper SSE error event, no hang, the partial usage billed once), and Bedrock's
exception event mid-stream."""

from __future__ import annotations

from pathlib import Path

from gateway.fakes.script import Behaviour
from tests.faults.conftest import Rig, open_rig
from tests.faults.harness import SCOUT, FakePark, fault_settings
from tests.faults.traffic import Reply, assert_all_served, chat_body, ledger_row, until


def _broken_midway(reply: Reply, provider: str) -> None:
    """A 200 stream that delivered content, then an OpenAI-shaped error event, and no [DONE]."""
    assert reply.status == 200 and reply.provider == provider
    contents = [e for e in reply.body if isinstance(e, dict) and e.get("choices")]
    assert contents, "some content arrived before the cut"
    error = reply.stream_error
    assert error is not None and set(error) >= {"message", "type", "code", "param"}, reply.text[-300:]
    assert provider in error["message"]
    assert "[DONE]" not in reply.text


def test_stream_cut_before_the_first_byte_falls_over(park: FakePark, tmp_path: Path) -> None:
    """Availability: Together (preferred here) drops every stream before sending a byte;
    each stream is served whole by DeepInfra, and once Together streams again it is back."""
    fakes = {"together": park.add("together"), "deepinfra": park.add("deepinfra")}
    rig = open_rig(fault_settings(tmp_path, fakes, order=("together",)), fakes)
    fakes["together"].script.default = Behaviour(disconnect_after_chunks=0)
    replies = rig.traffic.burst(chat_body(stream=True), n=24)
    assert_all_served(replies, by="deepinfra")
    assert all(r.stream_error is None and "[DONE]" in r.text for r in replies)
    fakes["together"].script.clear()
    until(lambda: rig.traffic.send(chat_body(stream=True)).provider == "together", "streams back on together")
    rig.finish()


def _cut_or_served(replies: list[Reply], broken: str, backup: str) -> None:
    """Each stream either broke mid-way on `broken` with an error event, or was served whole
    by `backup` once `broken`'s breaker opened (some of each)."""
    cut = [r for r in replies if r.provider == broken]
    for reply in cut:
        _broken_midway(reply, broken)
    whole = [r for r in replies if r.provider != broken]
    assert_all_served(whole, by=backup)
    assert all("[DONE]" in r.text and r.stream_error is None for r in whole)
    assert cut and whole, "the first streams broke, then the breaker moved the rest"


def test_stream_cut_after_the_first_byte_ends_with_an_error_event(hosted: Rig) -> None:
    """Honest failure, then availability: DeepInfra drops the connection after three content
    chunks. The client has the chunks, then an SSE error event naming DeepInfra (no hang, no
    [DONE]); the ledger has each such request once, as an error, with its partial usage.
    The cuts count against DeepInfra's breaker, so later streams go to Together."""
    primary = hosted.fakes["deepinfra"]
    primary.script.default = Behaviour(disconnect_after_chunks=3, completion_tokens=40)
    replies = hosted.traffic.burst(chat_body(stream=True), n=16, workers=2)
    _cut_or_served(replies, "deepinfra", "together")
    primary.script.clear()
    until(lambda: hosted.traffic.send(chat_body(stream=True)).provider == "deepinfra", "streams back on deepinfra")
    hosted.finish()
    row = ledger_row(hosted.settings.database_url, replies[0].request_id)
    assert row["status"] == "error" and row["prompt_tokens"] > 0 and row["completion_tokens"] > 0


def test_bedrock_exception_event_mid_stream(park: FakePark, tmp_path: Path) -> None:
    """Honest failure, availability, recovery: Bedrock (preferred here) sends an exception
    event after two chunks; the client gets an SSE error event naming Bedrock, billed once;
    after three such breaks DeepInfra takes the streams; healthy again, Bedrock is back."""
    fakes = {"bedrock": park.add("bedrock"), "deepinfra": park.add("deepinfra")}
    rig = open_rig(fault_settings(tmp_path, fakes, order=("bedrock",)), fakes)
    fakes["bedrock"].script.default = Behaviour(mid_stream_error_after=2, completion_tokens=40)
    replies = rig.traffic.burst(chat_body(stream=True, model=SCOUT), n=16, workers=2)
    _cut_or_served(replies, "bedrock", "deepinfra")
    fakes["bedrock"].script.clear()
    until(lambda: rig.traffic.send(chat_body(stream=True, model=SCOUT)).provider == "bedrock", "streams on bedrock")
    rig.finish()
    assert ledger_row(rig.settings.database_url, replies[0].request_id)["status"] == "error"
