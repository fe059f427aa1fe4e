"""5xx bursts: a backend failing a run of requests is routed around (its breaker opens),
and probed back into service once the run is over."""

from __future__ import annotations

import pytest

from gateway.fakes.script import Behaviour, FakeErrorKind
from tests.faults.conftest import Rig
from tests.faults.traffic import assert_all_served, assert_honest_failure, chat_body, until


@pytest.mark.parametrize("error", ["server_error", "overloaded"])
def test_5xx_burst_is_routed_around_and_traffic_returns(hosted: Rig, error: FakeErrorKind) -> None:
    """Availability and recovery: DeepInfra answers the next 20 requests with a 500 (or a
    503); every request of a 40-request burst is served; once the run is over the breaker's
    half-open probe succeeds and traffic is back on DeepInfra."""
    traffic, primary = hosted.traffic, hosted.fakes["deepinfra"]
    primary.script.push(Behaviour(error=error), times=20)
    replies = traffic.burst(chat_body(), n=40)
    assert_all_served(replies)
    assert any(r.attempts == 2 for r in replies), "deepinfra failed some of them"
    primary.script.clear()
    until(lambda: traffic.send(chat_body()).provider == "deepinfra", "traffic back on deepinfra")
    assert_all_served(traffic.burst(chat_body(), n=8), by="deepinfra")
    hosted.finish()


def test_5xx_everywhere_gets_an_honest_502(hosted: Rig) -> None:
    """Honest fast failure: both backends answer 500; the client gets a 502 naming both."""
    for fake in hosted.fakes.values():
        fake.script.default = Behaviour(error="server_error")
    reply = hosted.traffic.send(chat_body())
    assert_honest_failure(reply, {"deepinfra", "together"}, frozenset({502}))
    hosted.finish()
