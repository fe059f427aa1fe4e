"""Run a real gateway (uvicorn on a loopback port) in a background thread for tests."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from opentelemetry.trace import Tracer

from gateway.config import Settings
from gateway.metering.sink import MemorySink, QueueSink
from gateway.runtime import Runtime
from gateway.serve.app import create_app
from gateway.serve.guard import GuardedHttpToolsProtocol


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_gateway(
    settings: Settings,
    sink: MemorySink | QueueSink | None = None,
    tracer: Tracer | None = None,
    auth: bool = False,
) -> Iterator[tuple[str, Runtime]]:
    """Authentication is off (explicitly) unless `auth=True`."""
    runtime = Runtime.from_settings(settings.model_copy(update={"auth": auth}))
    runtime.sink = sink or MemorySink()
    if tracer is not None:
        runtime.tracer = tracer
    port = free_port()
    config = uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="corral-test-gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("gateway did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", runtime
    finally:
        server.should_exit = True
        thread.join(20)


def wait_ready(url: str, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    """Wait (bounded) until the gateway process at `url` answers /readyz with 200; kill it and
    fail if it exits or does not get there in time."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"the gateway at {url} did not become ready")
        time.sleep(0.1)


@contextmanager
def serving_asgi(app: object, http: type) -> Iterator[int]:
    """`app` under a real uvicorn with the HTTP protocol class `http`, on a free loopback
    port, in a thread; yields the port and stops the server on exit."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=http, log_level="error")  # type: ignore[arg-type]
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not instance.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield port
    finally:
        instance.should_exit = True
        thread.join(10)


class _SeenTransport:
    """A connection's real transport, with a callback told of each write before it is made."""

    def __init__(self, transport: asyncio.Transport, on_write: Callable[[bytes], None]) -> None:
        self._transport = transport
        self._on_write = on_write

    def write(self, data: bytes) -> None:
        self._on_write(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def protocol_seeing_writes(on_write: Callable[[bytes], None]) -> type[GuardedHttpToolsProtocol]:
    """The gateway's HTTP protocol (for `serving_asgi`), calling `on_write` with every write
    the server makes on any connection, before it is made."""

    class SeeingProtocol(GuardedHttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(_SeenTransport(transport, on_write))  # type: ignore[arg-type]

    return SeeingProtocol
