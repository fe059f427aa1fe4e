"""The common base of every fake: an aiohttp server on loopback that records what it
was sent and asks its `Script` how to answer."""

from __future__ import annotations

import asyncio
import socket
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from gateway.fakes.script import Behaviour, Script


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any


class FakeServer(ABC):
    """Subclasses add their routes in `routes()` and answer with the provider's wire format."""

    provider: str = "fake"
    #: Cancel a request's handler when its client disconnects (what a real server does with
    #: an abandoned generation; lets `hang` end when the client gives up).
    handler_cancellation: bool = False
    #: How long `stop()` waits for requests still in flight before cancelling them.
    shutdown_timeout_s: float = 60.0

    def __init__(
        self, *, script: Script | None = None, host: str = "127.0.0.1", port: int = 0, record: bool = True
    ) -> None:
        self.script = script or Script()
        self.host = host
        self.port = port
        self.requests: list[RecordedRequest] = []
        #: Chat requests received (numbers the scripted slow tail, `Behaviour.tail_every`).
        self.chat_count = 0
        #: Requests whose client closed the connection while this fake was still waiting
        #: to answer (how a test sees that the gateway cancelled an attempt).
        self.disconnects: list[RecordedRequest] = []
        #: Keep every request in `requests`; turn off for long load tests.
        self.record = record
        self._runner: web.AppRunner | None = None

    @abstractmethod
    def routes(self) -> list[web.RouteDef]: ...

    @property
    def url(self) -> str:
        """Root URL, e.g. http://127.0.0.1:43121 (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What an adapter's `base_url` must be set to to reach this fake
        (the provider's API prefix under `url`, e.g. `/openai/v1` for Groq)."""
        return self.url

    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.add_routes(self.routes())
        self._runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            handler_cancellation=self.handler_cancellation,
            shutdown_timeout=self.shutdown_timeout_s,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1]
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def pause(self, request: web.Request, recorded: RecordedRequest, seconds: float) -> bool:
        """Wait before answering, watching the connection: False (and the request noted in
        `disconnects`) when the client closed it meanwhile."""
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        while True:
            if _peer_closed(request.transport):
                self.disconnects.append(recorded)
                return False
            left = until - loop.time()
            if left <= 0:
                return True
            try:
                await asyncio.sleep(min(left, 0.01))
            except asyncio.CancelledError:
                # aiohttp cancels the handler once it sees the connection lost.
                if _peer_closed(request.transport):
                    self.disconnects.append(recorded)
                raise

    async def read(self, request: web.Request) -> tuple[RecordedRequest, Behaviour]:
        """Record the request and decide how to answer it."""
        raw = await request.read()
        try:
            parsed: Any = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            parsed = None
        recorded = RecordedRequest(request.method, request.path_qs, dict(request.headers), raw, parsed)
        if self.record:
            self.requests.append(recorded)
        behaviour = self.script.next(request.headers.get("x-fake-behaviour"), parsed)
        return recorded, behaviour


def _peer_closed(transport: asyncio.BaseTransport | None) -> bool:
    """Whether the client closed the connection. aiohttp stops reading while a handler
    runs, so it learns of a close only when it next writes; peek at the socket instead
    (an orderly close reads as end of file)."""
    if transport is None or transport.is_closing():
        return True
    sock = transport.get_extra_info("socket")
    if sock is None:
        return False
    try:
        with socket.fromfd(sock.fileno(), sock.family, sock.type) as dup:
            return dup.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


@contextmanager
def running_in_thread(*fakes: FakeServer) -> Iterator[list[str]]:
    """Run fakes on a private event loop in a daemon thread (for sync tests and tools)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(asyncio.gather(*(f.start() for f in fakes)))
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, name="corral-fakes", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("fakes did not start within 10 s")
    try:
        yield [f.url for f in fakes]
    finally:

        async def stop_all() -> None:
            await asyncio.gather(*(f.stop() for f in fakes))

        asyncio.run_coroutine_threadsafe(stop_all(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
