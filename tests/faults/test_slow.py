"""A backend that accepts and never answers, or answers its first byte slowly. The
adapters' first-byte timeout is 1 s here and the policy deadline 2 s."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.fakes.script import Behaviour
from tests.faults.conftest import Rig, open_rig
from tests.faults.harness import FakePark, fault_settings
from tests.faults.traffic import assert_all_served, assert_honest_failure, chat_body, until


def test_hanging_backend_times_out_and_traffic_moves_then_returns(hosted: Rig) -> None:
    """Availability and recovery: DeepInfra accepts and sends no byte; each request gives up
    on it at the first-byte timeout and is served by Together (its breaker then skips
    DeepInfra). Once DeepInfra answers again, traffic goes back to it."""
    traffic, primary = hosted.traffic, hosted.fakes["deepinfra"]
    primary.script.default = Behaviour(hang=True)
    replies = traffic.burst(chat_body(), n=24)
    assert_all_served(replies, by="together")
    assert any(r.attempts == 2 for r in replies), "some requests tried deepinfra first"
    primary.script.clear()
    until(lambda: traffic.send(chat_body()).provider == "deepinfra", "traffic back on deepinfra")
    hosted.finish()


def test_every_backend_hanging_gets_a_504_by_the_deadline(hosted: Rig) -> None:
    """Honest fast failure: when both backends hang the client gets an OpenAI-shaped 504
    naming both (first-byte timeouts inside the 2 s deadline), never a hang of its own."""
    for fake in hosted.fakes.values():
        fake.script.default = Behaviour(hang=True)
    replies = hosted.traffic.burst(chat_body(), n=4, workers=4)
    for reply in replies:
        assert_honest_failure(reply, {"deepinfra", "together"}, frozenset({504}))
    hosted.finish()


@pytest.mark.parametrize("stream", [False, True])
def test_slow_first_byte_within_the_limit_is_waited_for(hosted: Rig, stream: bool) -> None:
    """A first byte after 300 ms (limit 1 s) is awaited: DeepInfra serves, in one attempt."""
    hosted.fakes["deepinfra"].script.default = Behaviour(latency_ms=300)
    replies = hosted.traffic.burst(chat_body(stream=stream), n=8)
    assert_all_served(replies, by="deepinfra")
    assert {r.attempts for r in replies} == {1}
    hosted.finish()


@pytest.mark.parametrize("stream", [False, True])
def test_slow_first_byte_beyond_the_limit_falls_over(hosted: Rig, stream: bool) -> None:
    """A first byte after 1.5 s (limit 1 s): the attempt times out and Together serves;
    every request is served and billed once, with the timed-out attempt in the ledger."""
    hosted.fakes["deepinfra"].script.default = Behaviour(latency_ms=1500)
    replies = hosted.traffic.burst(chat_body(stream=stream), n=8)
    assert_all_served(replies, by="together")
    assert any(r.attempts == 2 for r in replies), "deepinfra was tried first"
    hosted.finish()


def test_hang_past_the_deadline_trips_the_breaker(park: FakePark, tmp_path: Path) -> None:
    """Honest failure, then availability and recovery, when the first-byte timeout (5 s) is
    longer than the deadline (2 s), so the deadline, not the adapter, ends each attempt:
    requests that spent their deadline on hanging DeepInfra get a 504 naming it; those cut
    attempts count against its breaker, so the next burst is served by Together at once;
    once DeepInfra answers again, traffic returns to it."""
    fakes = {"deepinfra": park.add("deepinfra"), "together": park.add("together")}
    rig = open_rig(fault_settings(tmp_path, fakes, first_byte_s=5.0), fakes)
    fakes["deepinfra"].script.default = Behaviour(hang=True)
    for reply in rig.traffic.burst(chat_body(), n=4, workers=4):
        assert_honest_failure(reply, {"deepinfra"}, frozenset({504}))
    assert_all_served(rig.traffic.burst(chat_body(), n=16), by="together")
    fakes["deepinfra"].script.clear()
    until(lambda: rig.traffic.send(chat_body()).provider == "deepinfra", "traffic back on deepinfra")
    rig.finish()
