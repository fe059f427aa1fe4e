"""Bedrock's own measurement of a Converse call (`metrics.latencyMs`, the whole call) reaches
the latency model as a total, never split by an estimate."""

from __future__ import annotations

from gateway.catalogue.deployments import load_catalogue
from gateway.catalogue.prices import load_price_book
from gateway.dispatch.loop import Dispatcher
from gateway.fakes.bedrock.server import BedrockFake
from gateway.fakes.script import Behaviour
from gateway.live.state import LiveState
from gateway.providers.bedrock.adapter import BedrockProvider

from .test_bedrock import DEPLOYMENT, config_for, user


async def test_converse_latency_is_reported_and_observed_as_a_total() -> None:
    fake = BedrockFake()
    await fake.start()
    provider = BedrockProvider(config_for(fake.url))
    await provider.start()
    try:
        fake.script.default = Behaviour(latency_ms=100, tokens_per_s=200, completion_tokens=40)
        completion = await provider.complete(user(max_tokens=40), DEPLOYMENT)
        assert completion.reported_timing_s is None  # a total, not a split
        assert completion.reported_total_s is not None
        assert 0.3 <= completion.reported_total_s < 1.5  # 100 ms + 40 tokens at 200/s, as Bedrock measured it
        state = LiveState()
        dispatcher = Dispatcher({"bedrock": provider}, load_catalogue(), load_price_book(), state)
        dispatcher._observe_complete(DEPLOYMENT, completion, 9.0, reasked=False)
        stats = state.stats[DEPLOYMENT.key]
        assert stats.samples == 1
        # The total observed is Bedrock's (~0.3 s), not our 9 s wall clock.
        assert stats.expected_latency_ms(40, state.clock()) < 2000
    finally:
        await provider.close()
        await fake.stop()
