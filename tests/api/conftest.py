"""A gateway on its built-in simulated providers, shared by the API tests of a module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.config import load_settings
from gateway.fakes.server import FakeServer, RecordedRequest
from gateway.runtime import Runtime
from tests.support import running_gateway


class SimulatedGateway:
    def __init__(self, url: str, runtime: Runtime) -> None:
        self.url = url
        self.runtime = runtime

    def fake(self, provider: str) -> FakeServer:
        return next(f for f in self.runtime.fakes if f.provider == provider)

    def requests(self, provider: str) -> list[RecordedRequest]:
        """What every fake of this provider (the pool has one per model) was sent."""
        return [r for f in self.runtime.fakes if f.provider == provider for r in f.requests]

    def reset(self) -> None:
        for fake in self.runtime.fakes:
            fake.script.clear()
            fake.requests.clear()
        state = self.runtime.state
        state.cooldowns.clear()
        state.breakers.clear()
        state.out_of_rotation.clear()
        state.out_until.clear()
        state.stats.clear()


@pytest.fixture(scope="module")
def simulated() -> Iterator[SimulatedGateway]:
    settings = load_settings(env={})
    with running_gateway(settings) as (url, runtime):
        yield SimulatedGateway(url, runtime)


@pytest.fixture
def gateway(simulated: SimulatedGateway) -> Iterator[SimulatedGateway]:
    simulated.reset()
    yield simulated
    simulated.reset()
