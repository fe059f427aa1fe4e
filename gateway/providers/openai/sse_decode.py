"""A small incremental Server-Sent Events decoder for upstream streams.

Bytes are fed as they arrive (`feed`), split at any point, and complete events come
out. It follows the WHATWG event-stream rules that matter to LLM backends: lines end
in LF, CRLF or CR (a CRLF split across two reads is still one line end); a blank
line dispatches the event; `data:` lines of one event are joined with LF; lines
starting with `:` are comments; `event:` names the event type (`error` for some
backends' in-stream failures); `id:` and `retry:` are ignored. Data stays `bytes`
so `orjson.loads` can read it without a decode step.

The cost is linear in the bytes fed: a read without a line end is appended to a
`bytearray`, never re-joined with what came before and split again (a single 200 MB
event used to take 33 s of CPU that way). An event larger than `max_event_bytes`, or a
stream larger than `max_stream_bytes`, raises `StreamTooLarge` as soon as it is seen,
before the bytes are kept.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["SSEDecoder", "SSEEvent", "StreamTooLarge"]

#: Defaults (gateway.config.StreamLimits carries the configured values).
MAX_EVENT_BYTES = 4 * 1024 * 1024
MAX_STREAM_BYTES = 64 * 1024 * 1024


class StreamTooLarge(ValueError):
    """An event or the whole stream is over its limit (the upstream is malformed)."""


class SSEEvent(NamedTuple):
    data: bytes
    #: The `event:` field; "message" when the event did not name one.
    event: str = "message"


_MESSAGE = "message"


class SSEDecoder:
    """Feed bytes, get complete events. One decoder per stream; not thread-safe."""

    __slots__ = ("_data", "_event", "_event_bytes", "_max_event", "_max_stream", "_pending", "_skip_lf", "_total")

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES, max_stream_bytes: int = MAX_STREAM_BYTES) -> None:
        #: The line in progress (no line end seen yet).
        self._pending = bytearray()
        self._data: list[bytes] = []
        #: Bytes of `data:` in the event in progress.
        self._event_bytes = 0
        self._event = _MESSAGE
        #: The previous read ended in CR: an LF starting the next read belongs to it.
        self._skip_lf = False
        self._total = 0
        self._max_event = max_event_bytes
        self._max_stream = max_stream_bytes

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Decode as much of the stream as is complete; keep the rest for the next read."""
        self._total += len(chunk)
        if self._total > self._max_stream:
            raise StreamTooLarge(f"the stream is over the {self._max_stream:,}-byte limit for an answer")
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if b"\r" in chunk:
            if chunk.endswith(b"\r"):
                self._skip_lf = True
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        end = chunk.rfind(b"\n")
        if end < 0:
            self._pending += chunk
            self._check_size()
            return []
        if self._pending:
            self._pending += chunk[:end]
            complete = bytes(self._pending)
        else:
            complete = chunk[:end]
        self._pending = bytearray(chunk[end + 1 :])
        events: list[SSEEvent] = []
        data = self._data
        for line in complete.split(b"\n"):
            if not line:
                if len(data) == 1 and self._event is _MESSAGE:  # nearly every event: inlined `_dispatch`
                    events.append(SSEEvent(data[0]))
                    data.clear()
                    self._event_bytes = 0
                elif data:
                    events.append(self._dispatch())
                    data = self._data
                else:
                    self._event = _MESSAGE
            elif line[:6] == b"data: ":  # nearly every line: inlined `_field`
                value = line[6:]
                self._event_bytes += len(value)
                data.append(value)
            else:
                self._field(line)
        self._check_size()
        return events

    def _check_size(self) -> None:
        if self._event_bytes + len(self._pending) > self._max_event:
            raise StreamTooLarge(f"an event is over the {self._max_event:,}-byte limit for one event")

    def flush(self) -> SSEEvent | None:
        """At end of stream: the last event if it lacked its closing blank line.

        The spec discards such an event; backends that close right after
        `data: [DONE]\\n` exist, so we are lenient.
        """
        if self._pending:
            self._field(bytes(self._pending))
            self._pending = bytearray()
        return self._dispatch() if self._data else None

    def _field(self, line: bytes) -> None:
        if line.startswith(b"data:"):
            value = line[5:]
            value = value[1:] if value[:1] == b" " else value
            self._event_bytes += len(value)
            self._data.append(value)
        elif line.startswith(b"event:"):
            value = line[6:]
            self._event = (value[1:] if value[:1] == b" " else value).decode("utf-8", "replace")
        elif line == b"data":
            self._data.append(b"")
        # Comments (":..."), id:, retry: and unknown fields are ignored.

    def _dispatch(self) -> SSEEvent:
        data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
        event = SSEEvent(data, self._event)
        self._data = []
        self._event_bytes = 0
        self._event = _MESSAGE
        return event
