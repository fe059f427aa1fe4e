"""The gateway's uvicorn protocol tells the app when a request's whole body is already in
(`BODY_RECEIVED` in the scope's extensions), and `read_body` then reads it without arming
its deadline; a body still on its way gets no such mark and keeps the deadline (a body
that never finishes is refused with 408: `tests/hostile/test_slowloris.py`)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from starlette.requests import Request

from gateway.api import parse
from gateway.serve.guard import BODY_RECEIVED, GuardedHttpToolsProtocol
from tests.support import serving_asgi

#: Per request: whether the mark was there when the app started, and whether a deadline was armed.
SEEN: list[dict[str, Any]] = []


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    marked = BODY_RECEIVED in scope.get("extensions", {})
    armed = []
    real_timeout = parse.asyncio.timeout

    def counting_timeout(delay: float) -> Any:
        armed.append(delay)
        return real_timeout(delay)

    parse.asyncio.timeout = counting_timeout  # type: ignore[assignment]
    try:
        body = await parse.read_body(Request(scope, receive), limit=1 << 20, timeout_s=5)
    finally:
        parse.asyncio.timeout = real_timeout  # type: ignore[assignment]
    SEEN.append({"marked": marked, "armed": bool(armed), "body": body})
    answer = orjson.dumps({"length": len(body)})
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": answer})


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    with serving_asgi(app, GuardedHttpToolsProtocol) as port:
        yield port


def _post(port: int, body: bytes, pause_s: float = 0.0) -> bytes:
    head = f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        if pause_s:
            sock.sendall(head + body[:5])
            time.sleep(pause_s)
            sock.sendall(body[5:])
        else:
            sock.sendall(head + body)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def test_a_body_sent_with_its_head_is_marked_and_read_without_a_deadline(server: int) -> None:
    SEEN.clear()
    answer = _post(server, b'{"model": "llama-4-scout"}')
    assert answer.startswith(b"HTTP/1.1 200")
    assert SEEN == [{"marked": True, "armed": False, "body": b'{"model": "llama-4-scout"}'}]


def test_a_body_still_arriving_is_not_marked_and_keeps_its_deadline(server: int) -> None:
    SEEN.clear()
    answer = _post(server, b'{"model": "llama-4-maverick"}', pause_s=0.3)
    assert answer.startswith(b"HTTP/1.1 200")
    assert SEEN == [{"marked": False, "armed": True, "body": b'{"model": "llama-4-maverick"}'}]


def test_the_mark_belongs_to_its_own_request_on_a_kept_alive_connection(server: int) -> None:
    """A second request on the same connection is judged on its own body, not the first's."""
    SEEN.clear()
    first, second = b'{"n": 1}', b'{"n": 22222}'
    with socket.create_connection(("127.0.0.1", server), timeout=5) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(first), first))
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(second), second[:3]))
        time.sleep(0.3)
        sock.sendall(second[3:])
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    assert [(s["marked"], s["armed"], s["body"]) for s in SEEN] == [(True, False, first), (False, True, second)]
