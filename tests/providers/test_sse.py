"""The SSE decoder: event framing, whatever the read boundaries."""

from __future__ import annotations

import random

import pytest

from gateway.providers.openai.sse_decode import SSEDecoder, SSEEvent, StreamTooLarge

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


def test_an_event_over_the_limit_is_refused_as_soon_as_it_is_seen() -> None:
    """One endless line: refused once past the event limit, without waiting for its end."""
    decoder = SSEDecoder(max_event_bytes=64 * 1024)
    decoder.feed(b'data: {"x": "')
    with pytest.raises(StreamTooLarge, match="one event"):
        for _ in range(100):
            decoder.feed(b"a" * 1024)


def test_an_event_of_many_lines_counts_all_its_data() -> None:
    decoder = SSEDecoder(max_event_bytes=4096)
    with pytest.raises(StreamTooLarge, match="one event"):
        decoder.feed(b"data: " + b"a" * 1000 + b"\n" * 1 + (b"data: " + b"b" * 1000 + b"\n") * 4)


def test_events_under_the_limit_pass_and_reset_the_count() -> None:
    decoder = SSEDecoder(max_event_bytes=4096)
    events = []
    for _ in range(50):
        events += decoder.feed(b"data: " + b"a" * 3000 + b"\n\n")
    assert len(events) == 50 and all(len(e.data) == 3000 for e in events)


def test_the_whole_stream_is_bounded() -> None:
    decoder = SSEDecoder(max_stream_bytes=100_000)
    with pytest.raises(StreamTooLarge, match="for an answer"):
        for _ in range(10_000):
            decoder.feed(b": keep-alive\n\n")


def test_a_large_event_in_small_reads_decodes_whole() -> None:
    """A 3 MiB event arriving 1 KiB at a time (where re-joining the pending buffer on each
    read was quadratic) comes out as one event."""
    payload = b"x" * (3 * 1024 * 1024)
    raw = b"data: " + payload + b"\n\n"
    decoder = SSEDecoder()
    events = []
    for at in range(0, len(raw), 1024):
        events += decoder.feed(raw[at : at + 1024])
    assert events == [SSEEvent(payload)]
