"""The SSE decoder: event framing, whatever the read boundaries."""

from __future__ import annotations

import random

import pytest

from gateway.providers.openai.sse_decode import SSEDecoder, SSEEvent

STREAM = (
    b": keep-alive comment\n\n"
    b'data: {"a": 1}\n\n'
    b"event: error\r\n"
    b'data: {"error": {"message": "boom"}}\r\n\r\n'
    b"data: first line\n"
    b"data:second line\n"
    b"id: 7\n"
    b"retry: 1000\n\n"
    b"data: caf\xc3\xa9\r\r"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    SSEEvent(b'{"a": 1}'),
    SSEEvent(b'{"error": {"message": "boom"}}', "error"),
    SSEEvent(b"first line\nsecond line"),
    SSEEvent("café".encode()),
    SSEEvent(b"[DONE]"),
]


def decode(pieces: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for piece in pieces:
        events.extend(decoder.feed(piece))
    tail = decoder.flush()
    if tail is not None:
        events.append(tail)
    return events


def test_whole_stream() -> None:
    assert decode([STREAM]) == EXPECTED


def test_every_single_split_point() -> None:
    for cut in range(len(STREAM) + 1):
        assert decode([STREAM[:cut], STREAM[cut:]]) == EXPECTED, cut


def test_byte_by_byte() -> None:
    assert decode([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


@pytest.mark.parametrize("seed", range(20))
def test_random_chunking(seed: int) -> None:
    rng = random.Random(seed)
    pieces, rest = [], STREAM
    while rest:
        size = rng.randint(0, 9)
        pieces.append(rest[:size])
        rest = rest[size:]
    assert decode(pieces) == EXPECTED


def test_crlf_split_between_reads_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\r") == []
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"data: y\r\n\r\n") == [SSEEvent(b"x\ny")]


def test_event_name_resets_after_dispatch_and_blank_events_are_ignored() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(b"event: error\n\n\ndata: 1\n\nevent: ping\ndata: 2\n\ndata: 3\n\n")
    assert events == [SSEEvent(b"1"), SSEEvent(b"2", "ping"), SSEEvent(b"3")]


def test_flush_returns_event_missing_its_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: [DONE]") == []
    assert decoder.flush() == SSEEvent(b"[DONE]")
    assert decoder.flush() is None


def test_empty_data_field() -> None:
    assert SSEDecoder().feed(b"data\ndata:\n\n") == [SSEEvent(b"\n")]
