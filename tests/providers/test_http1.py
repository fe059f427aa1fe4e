"""The pooled HTTP/1.1 transport against raw loopback servers that send exact bytes."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from gateway.providers.http1 import (
    ConnectFailed,
    ConnectionLost,
    Http1Client,
    InvalidResponse,
    ReadTimeout,
    TotalTimeout,
)
from tests.support import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'


class Server:
    """A loopback server running `handler` per connection; counts connections and requests."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.port = free_port()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
        )
        request = head + await reader.readexactly(length)
        self.requests.append(request)
        return request

    @classmethod
    def replying(cls, raw: bytes, *, hold_s: float = 0.0) -> Server:
        """A server that reads one request, sends `raw`, then holds the connection open
        for `hold_s` before closing it."""

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(raw)
            await writer.drain()
            await asyncio.sleep(hold_s)

        server = cls(handler)
        return server

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()


def client(**overrides: float) -> Http1Client:
    settings: dict[str, float] = {"connect_s": 2, "first_byte_s": 2, "total_s": 10, "keepalive_s": 30}
    settings.update(overrides)
    return Http1Client(limit=int(settings.pop("limit", 8)), headers={"Authorization": "Bearer k"}, **settings)


async def keep_answering(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        await server.read_request(reader)
        writer.write(OK)
        await writer.drain()


async def test_sequential_posts_reuse_one_connection_and_send_the_request_once() -> None:
    server = Server(lambda r, w: keep_answering(server, r, w))
    async with server:
        http = client()
        for _ in range(3):
            response = await http.post(server.url, b'{"a":1}')
            assert (response.status, await response.read()) == (200, b'{"ok":true}')
            response.release()
        await http.close()
    assert server.connections == 1 and len(server.requests) == 3
    head = server.requests[0]
    assert head.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert b"Host: 127.0.0.1:" in head and b"Authorization: Bearer k\r\n" in head and head.endswith(b'{"a":1}')


async def test_headers_are_case_insensitive_and_repeats_are_joined() -> None:
    server = Server.replying(
        b"HTTP/1.1 429 Too Many\r\nRetry-After: 7\r\nX-A: 1\r\nX-A: 2\r\nContent-Length: 0\r\n\r\n"
    )
    async with server:
        http = client()
        response = await http.post(server.url, b"{}")
        assert response.status == 429
        assert response.headers.get("retry-after") == response.headers["Retry-After"] == "7"
        assert response.headers["x-a"] == "1, 2" and "X-A" in response.headers
        assert await response.read() == b""
        await http.close()


async def test_a_chunked_stream_arrives_piece_by_piece() -> None:
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        writer.write(b"6\r\ndata: \r\n")
        await writer.drain()
        await release.wait()
        writer.write(b"5\r\n[1]\n\n\r\n0\r\n\r\n")
        await writer.drain()

    server = Server(handler)
    async with server:
        http = client()
        response = await http.post(server.url, b"{}")
        assert response.content_type == "text/event-stream"
        assert await response.readany() == b"data: "
        release.set()
        assert await response.readany() == b"[1]\n\n"
        assert await response.readany() == b""
        response.release()
        await http.close()


async def test_an_idle_connection_the_server_closed_is_not_reused() -> None:
    server = Server.replying(OK)  # closes each connection after one answer
    async with server:
        http = client()
        for _ in range(2):
            response = await http.post(server.url, b"{}")
            assert await response.read() == b'{"ok":true}'
            response.release()
            (origin,) = http._origins.values()
            for _ in range(500):  # bounded: until the close has reached the pooled connection
                if all(conn.lost for conn in origin.idle):
                    break
                await asyncio.sleep(0.01)
        await http.close()
    assert server.connections == 2


async def test_connection_close_and_unfinished_answers_are_not_pooled() -> None:
    server = Server.replying(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial", hold_s=5)
    async with server:
        http = client()
        response = await http.post(server.url, b"{}")
        assert await response.readany() == b"partial"
        response.release()  # body unfinished: the connection must be dropped
        (origin,) = http._origins.values()
        assert origin.open == 0 and origin.idle == []
        await http.close()


async def test_body_until_close_and_a_connection_lost_mid_body() -> None:
    server = Server.replying(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it")
    async with server:
        http = client()
        response = await http.post(server.url, b"{}")
        assert await response.read() == b"all of it"
        await http.close()

    cut_server = Server.replying(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nhalf")
    async with cut_server:
        http = client()
        response = await http.post(cut_server.url, b"{}")
        with pytest.raises(ConnectionLost):
            await response.read()
        await http.close()


async def test_first_byte_and_total_timeouts() -> None:
    server = Server.replying(b"", hold_s=5)
    async with server:
        http = client(first_byte_s=0.2)
        with pytest.raises(ReadTimeout):
            await http.post(server.url, b"{}")
        await http.close()
        http = client(first_byte_s=5, total_s=0.2)
        with pytest.raises(TotalTimeout):
            await http.post(server.url, b"{}")
        await http.close()


def trickling(pieces: int, gap_s: float) -> Server:
    """A chunked stream of `pieces` parts, `gap_s` apart."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        await writer.drain()
        for _ in range(pieces):
            await asyncio.sleep(gap_s)
            writer.write(b"1\r\nx\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    server = Server(handler)
    return server


async def read_all(http: Http1Client, url: str) -> bytes:
    response = await http.post(url, b"{}")
    received = b""
    while data := await response.readany():
        received += data
    response.release()
    return received


async def test_a_stream_slower_in_all_than_the_read_timeout_but_never_idle_that_long_is_read_whole() -> None:
    """The read timeout is per gap between reads, not since the first wait (the connection's
    one timer goes off again later while data keeps coming)."""
    server = trickling(pieces=8, gap_s=0.1)
    async with server:
        http = client(first_byte_s=0.35)
        assert await read_all(http, server.url) == b"x" * 8
        await http.close()


async def test_a_gap_longer_than_the_read_timeout_mid_stream_times_out() -> None:
    server = trickling(pieces=3, gap_s=0.6)
    async with server:
        http = client(first_byte_s=0.3)
        response = await http.post(server.url, b"{}")
        with pytest.raises(ReadTimeout):
            while await response.readany():
                pass
        response.release()
        await http.close()


async def test_the_total_timeout_ends_a_stream_that_never_pauses_long() -> None:
    server = trickling(pieces=20, gap_s=0.1)
    async with server:
        http = client(first_byte_s=0.5, total_s=0.6)
        with pytest.raises(TotalTimeout):
            await read_all(http, server.url)
        await http.close()


async def test_a_stream_arms_one_timer_not_one_per_read(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    armed: list[float] = []
    real_call_at = loop.call_at

    def counting_call_at(
        when: float, callback: Callable[..., object], *args: object, **kwargs: object
    ) -> asyncio.TimerHandle:
        if getattr(callback, "__name__", "") == "_on_timer":  # the reads' timer, not connect's or linger's
            armed.append(when)
        return real_call_at(when, callback, *args, **kwargs)  # type: ignore[arg-type]

    server = trickling(pieces=10, gap_s=0.02)
    async with server:
        http = client(first_byte_s=5)
        monkeypatch.setattr(loop, "call_at", counting_call_at)
        assert await read_all(http, server.url) == b"x" * 10
        monkeypatch.undo()
        await http.close()
    assert len(armed) == 1, armed  # eleven reads (headers, ten pieces), one timer


async def test_refused_and_garbage_answers() -> None:
    http = client()
    with pytest.raises(ConnectFailed):
        await http.post(f"http://127.0.0.1:{free_port()}/x", b"{}")

    server = Server.replying(b"SMTP ready\r\n\r\n")
    async with server:
        with pytest.raises(InvalidResponse):
            await http.post(server.url, b"{}")
    await http.close()


async def test_an_answer_declared_over_the_limit_is_refused_unread() -> None:
    server = Server.replying(b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n{", hold_s=5)
    async with server:
        http = client()
        response = await http.post(server.url, b"{}")
        assert await response.read(limit=1024) is None
        await http.close()


async def test_the_pool_never_opens_more_than_its_limit() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await server.read_request(reader)
            await asyncio.sleep(0.05)
            writer.write(OK)
            await writer.drain()

    server = Server(slow)
    async with server:
        http = client(limit=2)

        async def one() -> bytes | None:
            response = await http.post(server.url, b"{}")
            try:
                return await response.read()
            finally:
                response.release()

        answers = await asyncio.gather(*(one() for _ in range(6)))
        await http.close()
    assert answers == [b'{"ok":true}'] * 6
    assert server.connections == 2


async def test_a_cancelled_request_drops_its_connection() -> None:
    server = Server.replying(b"", hold_s=5)
    async with server:
        http = client()
        task = asyncio.create_task(http.post(server.url, b"{}"))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        (origin,) = http._origins.values()
        assert origin.open == 0 and origin.idle == []
        await http.close()


async def test_a_large_stream_is_read_with_back_pressure() -> None:
    piece = b"x" * 65536

    async def firehose(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (len(piece) * 64))
        for _ in range(64):
            writer.write(piece)
            await writer.drain()

    server = Server(firehose)
    async with server:
        http = client()
        response = await http.post(server.url, b"{}")
        total = 0
        async for data in _pieces(response.readany):
            total += len(data)
            await asyncio.sleep(0)
        assert total == len(piece) * 64
        await http.close()


async def _pieces(read: Callable[[], Awaitable[bytes]]) -> AsyncIterator[bytes]:
    while data := await read():
        yield data


async def test_an_ipv6_literal_is_reached_and_named_in_brackets() -> None:
    port = free_port()
    requests: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(OK)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handler, "::1", port)
    try:
        http = client()
        response = await http.post(f"http://[::1]:{port}/v1/x", b"")
        assert await response.read() == b'{"ok":true}'
        await http.close()
    finally:
        server.close()
    assert f"Host: [::1]:{port}\r\n".encode() in requests[0]


async def test_an_answer_dropped_unreleased_gives_its_slot_back() -> None:
    server = Server(lambda r, w: keep_answering(server, r, w))
    async with server:
        http = client(limit=1)
        response = await http.post(server.url, b"{}")
        (origin,) = http._origins.values()
        assert origin.open == 1
        del response  # neither released nor closed
        gc.collect()
        assert origin.open == 0
        second = await http.post(server.url, b"{}")  # the one slot is free again
        assert await second.read() == b'{"ok":true}'
        second.release()
        await http.close()


STREAM_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
DONE_CHUNK = b"e\r\ndata: [DONE]\n\n\r\n"


async def test_a_stream_released_before_its_terminator_is_pooled_when_it_arrives() -> None:
    """A stream is read up to its [DONE] event and released; the chunked terminator comes
    a moment later. The connection goes back to the pool then, and the next request reuses it."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await server.read_request(reader)
            writer.write(STREAM_HEAD + DONE_CHUNK)
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(b"0\r\n\r\n")
            await writer.drain()

    server = Server(handler)
    async with server:
        http = client()
        for _ in range(3):
            response = await http.post(server.url, b"{}")
            assert await response.readany() == b"data: [DONE]\n\n"
            response.release()  # before the terminator: the caller is not held up
            (origin,) = http._origins.values()
            assert origin.idle == [] and origin.open == 1
            await asyncio.sleep(0.2)
            assert len(origin.idle) == 1 and origin.open == 1
        assert server.connections == 1
        await http.close()


async def test_a_released_stream_whose_terminator_never_comes_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.providers import http1

    monkeypatch.setattr(http1, "LINGER_S", 0.1)
    server = Server.replying(STREAM_HEAD + DONE_CHUNK, hold_s=5)
    async with server:
        http = client()
        response = await http.post(server.url, b"{}")
        assert await response.readany() == b"data: [DONE]\n\n"
        response.release()
        (origin,) = http._origins.values()
        assert origin.open == 1
        await asyncio.sleep(0.4)
        assert origin.open == 0 and origin.idle == []
        await http.close()
