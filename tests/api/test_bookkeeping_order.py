"""What an answer waits for and what it does not (`gateway.dispatch.accounting`): the
request's usage event is in the journal before the answer's bytes are written; its
bookkeeping (here, the team budget's spend) follows the write, and is applied before the
gateway reads the client's next request — sent on the same connection the moment the
answer is in, that request is refused by the budget the first one spent."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from gateway.config import load_settings
from gateway.metering.sink import MemorySink
from gateway.runtime import Runtime
from gateway.serve.app import create_app
from tests.support import protocol_seeing_writes, serving_asgi

POLICY = """\
version: 1
name: tight
defaults: {objective: {prefer: cost}}
budgets:
  - {team: research, limit_usd: "0.0000001", period: month}
"""

#: At each write the server made: (the journal's events so far, the team's spend so far).
SEEN: list[tuple[int, Decimal]] = []
RUNTIME: list[Runtime] = []


def _snapshot() -> tuple[int, Decimal]:
    runtime = RUNTIME[0]
    sink = runtime.sink
    assert isinstance(sink, MemorySink)
    spent = sum((v for (kind, subject, _), v in runtime.budgets.spent.items() if subject == "research"), Decimal(0))
    return len(sink.events), spent


SnapshottingProtocol = protocol_seeing_writes(lambda _: SEEN.append(_snapshot()))


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[int]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    settings = load_settings(env={}).model_copy(update={"auth": False, "policy_path": str(policy)})
    runtime = Runtime.from_settings(settings)
    runtime.sink = MemorySink()
    RUNTIME[:] = [runtime]
    with serving_asgi(create_app(runtime), SnapshottingProtocol) as port:
        yield port


def _request(body: bytes) -> bytes:
    head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def _read_answer(sock: socket.socket) -> bytes:
    """One whole answer (Content-Length framed) from a keep-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    length = int(next(line.split(b":")[1] for line in lines if line.startswith(b"content-length")))
    while len(rest) < length:
        rest += sock.recv(65536)
    return head + b"\r\n\r\n" + rest


def test_the_journal_precedes_the_answer_and_the_bookkeeping_precedes_the_next_request(gateway: int) -> None:
    body = orjson.dumps(
        {
            "model": "llama-4-scout",
            "messages": [{"role": "user", "content": "hi"}],
            "corral": {"providers": {"only": ["deepinfra"]}, "tags": {"team": "research"}},
        }
    )
    SEEN.clear()
    with socket.create_connection(("127.0.0.1", gateway), timeout=10) as sock:
        sock.sendall(_request(body))
        first = _read_answer(sock)
        sock.sendall(_request(body))  # at once, on the same connection
        second = _read_answer(sock)
    assert first.startswith(b"HTTP/1.1 200 OK"), first[:200]
    journal_at_answer, spent_at_answer = SEEN[0]
    assert journal_at_answer == 1, "the usage event is journaled before the answer is written"
    assert spent_at_answer == 0, "the budget's bookkeeping follows the answer's write"
    assert second.startswith(b"HTTP/1.1 402"), second[:300]
    assert b"budget_exceeded" in second
    assert SEEN[-1][1] > 0
