"""Redis (shared breakers, cooldowns and statistics between replicas) going away under
traffic and coming back: a private redis-server on a free port is killed and restarted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.fakes.script import Behaviour
from tests.faults.conftest import Rig, open_rig
from tests.faults.harness import FakePark, fault_settings
from tests.faults.private_redis import PrivateRedis
from tests.faults.traffic import assert_all_served, chat_body, until

KEY = "deepinfra/llama-4-maverick"
HOSTED = ("deepinfra", "together")


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.kill()


def _connected(rig: Rig) -> bool:
    return rig.runtime.shared is not None and rig.runtime.shared.connected


def _breaker_shared(a: Rig, b: Rig, park: FakePark) -> None:
    """DeepInfra fails on A until A's breaker opens; B adopts the open breaker and serves
    from Together at its first attempt, never calling DeepInfra itself."""
    deepinfra = a.fakes["deepinfra"]
    deepinfra.script.default = Behaviour(error="server_error")
    assert_all_served(a.traffic.burst(chat_body(), n=3, workers=1), by="together")
    assert a.runtime.state.breakers[KEY].state == "open"
    until(lambda: KEY in b.runtime.state.breakers and b.runtime.state.breakers[KEY].state == "open", "B adopted it")
    calls = len(deepinfra.requests)
    served = b.traffic.send(chat_body())
    assert served.provider == "together" and served.attempts == 1 and len(deepinfra.requests) == calls
    deepinfra.script.clear()


def test_redis_down_and_back(park: FakePark, tmp_path: Path, private_redis: PrivateRedis) -> None:
    """Availability and recovery: two gateways share state through Redis. With Redis killed
    every request on both is served (each routes on its own state, its breaker still
    working); once Redis is back both reconnect without a restart and share breakers again.
    Ledger: each gateway's rows exactly once."""
    fakes = {"deepinfra": park.add("deepinfra"), "together": park.add("together")}
    rigs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        rigs.append(open_rig(fault_settings(tmp_path / name, fakes, redis_url=private_redis.url), fakes))
    a, b = rigs
    try:
        until(lambda: _connected(a) and _connected(b), "both gateways on Redis")
        private_redis.kill()
        fakes["deepinfra"].script.push(Behaviour(error="server_error"), times=3)
        assert_all_served(a.traffic.burst(chat_body(), n=20, workers=1))
        assert a.runtime.state.breakers[KEY].state == "open", "A's own breaker works without Redis"
        assert_all_served(b.traffic.burst(chat_body(), n=30))
        until(lambda: not _connected(a) and not _connected(b), "both noticed Redis gone")
        private_redis.start()
        until(lambda: _connected(a) and _connected(b), "both gateways back on Redis")
        until(lambda: a.runtime.state.breakers[KEY].would_allow(a.runtime.state.clock()), "A's breaker half-open")
        until(lambda: a.traffic.send(chat_body()).provider == "deepinfra", "A back on deepinfra")
        until(lambda: b.traffic.send(chat_body()).provider == "deepinfra", "B back on deepinfra")
        _breaker_shared(a, b, park)
    finally:
        for rig in rigs:
            rig.stack.close()
    for rig in rigs:
        rig.finish()
