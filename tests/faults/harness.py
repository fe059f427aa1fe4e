"""The fault suite's rig: fakes we can stop and restart on their own loop, a gateway
wired to exactly those fakes with a real SQLite (or PostgreSQL) ledger, and a client
that remembers every answer so the ledger can be checked against it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from gateway.config import Settings, load_settings
from gateway.fakes.bedrock.server import TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY
from gateway.fakes.registry import make_fake
from gateway.fakes.server import FakeServer
from gateway.metering.sink import QueueSink
from gateway.metering.sql import SqlStore
from gateway.runtime import Runtime
from tests.support import running_gateway

MAVERICK = "llama-4-maverick"
SCOUT = "llama-4-scout"
#: The policy deadline every scenario runs under; clients give up long after it.
DEADLINE_MS = 2000
#: No honest failure may take longer than this (the client's own timeout, far past the deadline).
CLIENT_TIMEOUT_S = 10.0

POLICY = """
version: 1
name: {name}
defaults:
  objective: {{prefer: cost}}
  order: {order}
  pool: {{prefer_pool: true, max_queue_depth: 8, max_kv_cache_usage: 0.95, cost_model: sunk}}
  breaker: {{consecutive_failures: 3, error_rate: 0.5, min_requests: 50, window_s: 30, cooldown_s: 1}}
  retry:
    attempts: 3
    deadline_ms: {deadline_ms}
    tries_per_deployment: 1
    on: [rate_limited, overloaded, timeout, connection, upstream_5xx]
"""


def policy_text(name: str = "faults", order: tuple[str, ...] = ()) -> str:
    return POLICY.format(name=name, order=list(order), deadline_ms=DEADLINE_MS)


class FakePark:
    """Fakes on a private event loop in a daemon thread, each stoppable and restartable
    on the same port (a backend going away and coming back)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="corral-fault-fakes", daemon=True)
        self._thread.start()
        self.fakes: list[FakeServer] = []

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(15)

    def add(self, provider: str, **kwargs: Any) -> FakeServer:
        return self.start(make_fake(provider, **kwargs))

    def start(self, fake: FakeServer) -> FakeServer:
        self._run(fake.start())
        self.fakes.append(fake)
        return fake

    def stop(self, fake: FakeServer) -> None:
        """Close the listener: new connections are refused."""
        self._run(fake.stop())

    def restart(self, fake: FakeServer) -> None:
        self._run(fake.start())

    def close(self) -> None:
        for fake in self.fakes:
            self._run(fake.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def provider_entry(name: str, fake: FakeServer, first_byte_s: float) -> dict[str, Any]:
    """The config-file entry pointing the `name` adapter at `fake`."""
    timeouts = {"connect_s": 1.0, "first_byte_s": first_byte_s, "total_s": 30.0}
    if name == "vllm":
        pool = {"urls": [fake.base_url], "health_interval_s": 0.2, "metrics_interval_s": 0.1}
        return {"vllm": pool, "timeouts": timeouts}
    if name == "bedrock":
        key = getattr(fake, "access_key_id", TEST_ACCESS_KEY_ID)
        secret = getattr(fake, "secret_access_key", TEST_SECRET_ACCESS_KEY)
        region = getattr(fake, "region", "us-east-1")
        auth = {"region": region, "access_key_id": key, "secret_access_key": secret}
        return {"base_url": fake.base_url, "bedrock": auth, "timeouts": timeouts}
    key = getattr(fake, "api_key", None) or getattr(fake, "default_api_key", None) or "test-key"
    return {"base_url": fake.base_url, "api_key": key, "timeouts": timeouts}


def fault_settings(
    workdir: Path,
    backends: Mapping[str, FakeServer | list[FakeServer]],
    *,
    order: tuple[str, ...] = (),
    first_byte_s: float = 1.0,
    database_url: str | None = None,
    redis_url: str | None = None,
) -> Settings:
    """Settings for a gateway that knows only `backends` (a list: vLLM replicas)."""
    providers: dict[str, Any] = {}
    for name, target in backends.items():
        fakes = target if isinstance(target, list) else [target]
        providers[name] = provider_entry(name, fakes[0], first_byte_s)
        if name == "vllm":
            providers[name]["vllm"]["urls"] = [f.base_url for f in fakes]
    policy = workdir / "policy.yaml"
    policy.write_text(policy_text(order=order))
    config = workdir / "corral.yaml"
    config.write_text(yaml.safe_dump({"providers": providers}))
    env = {
        "CORRAL_POLICY": str(policy),
        "DATABASE_URL": database_url or f"sqlite:///{workdir / 'ledger.db'}",
        "CORRAL_SIMULATE": "0",
    }
    if redis_url:
        env["REDIS_URL"] = redis_url
    settings = load_settings(config, env=env)
    return settings.model_copy(update={"journal_path": str(workdir / "usage.journal")})


@contextmanager
def fault_gateway(settings: Settings, *, retry_interval_s: float = 0.2) -> Iterator[tuple[str, Runtime]]:
    """A running gateway whose ledger is a real database; on exit the sink is drained."""
    store = SqlStore(settings.database_url, connect_timeout_s=1)
    sink = QueueSink(store, Path(settings.journal_path), retry_interval_s=retry_interval_s, flush_interval_s=0.05)
    try:
        with running_gateway(settings, sink=sink) as (url, runtime):
            yield url, runtime
    finally:
        store.close()
