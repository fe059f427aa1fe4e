"""A response's head goes out in the same write as its first body bytes
(`gateway.serve.coalesce`), through uvicorn with the gateway's own protocol; a head whose
body is not ready in the same turn of the event loop is not held back. Through the gateway,
a stream's last upstream batch goes out with its closing frames (`Relay.ended`)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import orjson
import pytest

from gateway.config import load_settings
from gateway.dispatch.accounting import Accounting, Call
from gateway.dispatch.loop import OpenStream
from gateway.dispatch.relay import Relay
from gateway.fakes.script import Behaviour
from gateway.metering.sink import MemorySink
from gateway.runtime import Runtime
from gateway.serve.app import create_app
from gateway.serve.coalesce import HeadHoldingTransport
from tests.cache.policy import write_policy
from tests.support import protocol_seeing_writes, serving_asgi

#: Every write the server made on each connection, in order (the test's own record).
WRITES: list[bytes] = []


RecordingProtocol = protocol_seeing_writes(WRITES.append)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    headers = [(b"content-type", b"text/plain")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if scope["path"] == "/late":  # the body is not ready when the response starts
        await asyncio.sleep(0.5)
    await send({"type": "http.response.body", "body": b"first", "more_body": True})
    await send({"type": "http.response.body", "body": b"second", "more_body": False})


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    with serving_asgi(app, RecordingProtocol) as port:
        yield port


def _get(port: int, path: str) -> tuple[bytes, bool]:
    """The whole answer, and whether the head was complete before any body bytes came."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        received, head_first = b"", False
        while chunk := sock.recv(65536):
            if not received and b"\r\n\r\n" in chunk:
                head_first = chunk.endswith(b"\r\n\r\n")
            received += chunk
        return received, head_first


def test_head_and_first_body_bytes_are_one_write(server: int) -> None:
    WRITES.clear()
    answer, _ = _get(server, "/now")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"6\r\nsecond\r\n0\r\n\r\n"), answer
    assert len(WRITES) == 2, WRITES
    head, _, body = WRITES[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and body == b"5\r\nfirst\r\n", WRITES[0]


def test_a_head_without_a_body_ready_is_sent_at_once(server: int) -> None:
    WRITES.clear()
    answer, head_first = _get(server, "/late")
    assert answer.endswith(b"0\r\n\r\n"), answer
    # The body waits half a second in the app: a head held for it would arrive with it.
    assert head_first, answer
    assert WRITES[0].endswith(b"\r\n\r\n") and len(WRITES) == 3, WRITES


class _Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def test_closing_sends_a_held_head_first() -> None:
    async def run() -> _Recorder:
        recorder = _Recorder()
        transport = HeadHoldingTransport(recorder, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"HEAD")
        transport.close()
        await asyncio.sleep(0)
        return recorder

    recorder = asyncio.run(run())
    assert recorder.writes == [b"HEAD"] and recorder.closed


# --- Streams through the gateway: the upstream's last batch goes out with the closing frames ---

STREAMS = {
    "/v1/chat/completions": ({"messages": [{"role": "user", "content": "hi"}]}, b"data: [DONE]\n\n"),
    "/v1/completions": ({"prompt": "hi"}, b"data: [DONE]\n\n"),
    "/v1/responses": ({"input": "hi", "store": False}, b"event: response.completed\n"),
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Runtime]]:
    policy = write_policy(tmp_path_factory.mktemp("policy"))  # requests tagged cache=yes are kept
    runtime = Runtime.from_settings(
        load_settings(env={}).model_copy(update={"auth": False, "policy_path": str(policy)})
    )
    runtime.sink = MemorySink()
    with serving_asgi(create_app(runtime), RecordingProtocol) as port:
        yield port, runtime


def _stream(
    port: int, path: str, behaviour: Behaviour, runtime: Runtime, tags: dict[str, str] | None = None, **more: Any
) -> bytes:
    for fake in runtime.fakes:
        fake.script.default = behaviour
    extra, _ = STREAMS[path]
    corral = {"providers": {"only": ["deepinfra"]}, "tags": tags or {}}
    body = orjson.dumps({"model": "llama-4-scout", "stream": True, "corral": corral, **extra, **more})
    WRITES.clear()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n"
        sock.sendall(head.encode() + body)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 200 OK\r\n") and received.endswith(b"\r\n0\r\n\r\n"), received[-200:]
    return received


@pytest.mark.parametrize("path", sorted(STREAMS))
def test_a_stream_that_arrives_whole_goes_out_in_one_write(gateway: tuple[int, Runtime], path: str) -> None:
    """The fake sends its whole answer at once (as a short answer comes): head, every chunk,
    the closing frames and the chunked-encoding terminator leave in a single write."""
    port, runtime = gateway
    received = _stream(port, path, Behaviour(completion_tokens=6), runtime)
    _, closing = STREAMS[path]
    assert len(WRITES) == 1, [w[-60:] for w in WRITES]
    assert closing in WRITES[0] and WRITES[0].endswith(b"\r\n0\r\n\r\n")
    assert b"".join(WRITES) == received


@pytest.mark.parametrize("path", sorted(STREAMS))
def test_a_paced_stream_goes_out_as_it_arrives(gateway: tuple[int, Runtime], path: str) -> None:
    """Only the batch that carried the upstream's end is held for the closing frames: chunks
    that arrive one by one are written one by one, the first long before the end."""
    port, runtime = gateway
    _stream(port, path, Behaviour(completion_tokens=6, tokens_per_s=40), runtime)
    _, closing = STREAMS[path]
    content = [w for w in WRITES if closing not in w]
    assert len(content) >= 4, [w[-60:] for w in WRITES]
    assert closing in WRITES[-1] or closing in WRITES[-2]


def test_a_stream_kept_in_the_cache_is_answered_before_the_cache_write(gateway: tuple[int, Runtime]) -> None:
    """Kept for the response cache, the answer goes out first and [DONE] after the cache's
    write (with Redis, a round trip): two writes, the answer not held for the cache."""
    port, runtime = gateway
    tags = {"cache": "yes", "team": f"t-{time.monotonic_ns()}"}
    _stream(port, "/v1/chat/completions", Behaviour(completion_tokens=6), runtime, tags, temperature=0)
    assert len(WRITES) == 2, [w[-60:] for w in WRITES]
    assert b'"content"' in WRITES[0] and b"[DONE]" not in WRITES[0]
    assert WRITES[1].endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n")


def test_a_stored_response_is_answered_before_the_store_write(gateway: tuple[int, Runtime]) -> None:
    """`store` (the default): the answer goes out first, `response.completed` after the
    conversation is written (then a follow-up naming it finds it)."""
    port, runtime = gateway
    _stream(port, "/v1/responses", Behaviour(completion_tokens=6), runtime, store=True)
    assert len(WRITES) == 2, [w[-60:] for w in WRITES]
    assert b"response.output_text.delta" in WRITES[0] and b"response.completed" not in WRITES[0]
    assert b"event: response.completed" in WRITES[1]


def test_the_last_batch_is_never_held_behind_the_tool_call_gate() -> None:
    """`Relay.ended` (the edge then holds the batch for the closing frames) is False whenever
    the gate stands between upstream and client, even once the upstream has ended."""
    ended = SimpleNamespace(ended=True)
    plain = Relay(
        cast(Accounting, None),
        cast(OpenStream, SimpleNamespace(first=None, guarded=None, stream=ended)),
        cast(Call, None),
    )
    gated = Relay(
        cast(Accounting, None),
        cast(OpenStream, SimpleNamespace(first=None, guarded=object(), stream=ended)),
        cast(Call, None),
    )
    assert plain.ended and not plain.gated
    assert gated.gated and not gated.ended
