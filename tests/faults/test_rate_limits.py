"""429 storms: the rate-limited backend cools down for its retry-after (or the default
when it gives none) while the other serves; then traffic returns to it."""

from __future__ import annotations

import pytest

from gateway.fakes.script import Behaviour
from tests.faults.conftest import Rig
from tests.faults.traffic import assert_all_served, assert_honest_failure, chat_body, until


@pytest.mark.parametrize("retry_after_s", [1.0, None], ids=["retry-after", "no-retry-after"])
def test_429_storm_moves_traffic_and_it_returns(hosted: Rig, retry_after_s: float | None) -> None:
    """Availability and recovery: while DeepInfra answers every request with 429 (with or
    without retry-after) every request of a burst is served, by Together; after the storm
    and the cooldown, traffic is back on DeepInfra."""
    traffic, primary = hosted.traffic, hosted.fakes["deepinfra"]
    primary.script.default = Behaviour(error="rate_limited", retry_after_s=retry_after_s)
    replies = traffic.burst(chat_body(), n=40)
    assert_all_served(replies, by="together")
    assert "deepinfra/llama-4-maverick" in hosted.runtime.state.cooldowns
    primary.script.clear()
    until(lambda: traffic.send(chat_body()).provider == "deepinfra", "traffic back on deepinfra")
    hosted.finish()


def test_429_everywhere_gets_a_429_with_retry_after(hosted: Rig) -> None:
    """Honest failure: when every backend rate-limits, the client gets OpenAI's 429 with
    retry-after (not a 5xx), naming the backends; later ones are refused at once."""
    for fake in hosted.fakes.values():
        fake.script.default = Behaviour(error="rate_limited", retry_after_s=3)
    replies = hosted.traffic.burst(chat_body(), n=6, workers=1)
    for reply in replies:
        assert_honest_failure(reply, {"deepinfra", "together"}, frozenset({429}))
        assert int(reply.headers["retry-after"]) >= 1
    assert replies[0].attempts == 2 and replies[-1].attempts == 0, "cooling backends are not called again"
    hosted.finish()
