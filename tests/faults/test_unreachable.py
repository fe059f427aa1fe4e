"""A backend that refuses connections: traffic moves to the one still up, an honest 503
when none is, and traffic returns once it listens again (no restart)."""

from __future__ import annotations

from tests.faults.conftest import Rig
from tests.faults.harness import FakePark
from tests.faults.traffic import assert_all_served, assert_honest_failure, chat_body, until


def test_connection_refused_moves_traffic_and_it_returns(hosted: Rig, park: FakePark) -> None:
    """Availability and recovery: with DeepInfra refusing connections every request of a
    burst is served by Together; once DeepInfra listens again (and its breaker half-opens)
    the provider header shows it again. Ledger: one row per request, one per attempt."""
    traffic, primary = hosted.traffic, hosted.fakes["deepinfra"]
    assert traffic.send(chat_body()).provider == "deepinfra"
    park.stop(primary)
    assert_all_served(traffic.burst(chat_body(), n=40), by="together")
    assert hosted.runtime.state.breakers["deepinfra/llama-4-maverick"].state == "open"
    park.restart(primary)
    until(lambda: traffic.send(chat_body()).provider == "deepinfra", "traffic back on deepinfra")
    assert_all_served(traffic.burst(chat_body(), n=16), by="deepinfra")
    hosted.finish()


def test_every_backend_refusing_gets_an_honest_503(hosted: Rig, park: FakePark) -> None:
    """Honest fast failure: with both backends refusing connections the client gets an
    OpenAI-shaped 503 naming both (streams too, before any event), well inside its timeout;
    then the open breakers answer at once, naming both and why. Those that reached a
    backend are in the ledger."""
    for fake in hosted.fakes.values():
        park.stop(fake)
    replies = hosted.traffic.burst(lambda i: chat_body(stream=i % 2 == 1), n=8, workers=1)
    for reply in replies:
        assert_honest_failure(reply, {"deepinfra", "together"})
    assert replies[0].attempts == 2 and replies[-1].attempts == 0, "then the open breakers answer at once"
    hosted.finish()
