"""A small incremental Server-Sent Events decoder for upstream streams.

Bytes are fed as they arrive (`feed`), split at any point, and complete events come
out. It follows the WHATWG event-stream rules that matter to LLM backends: lines end
in LF, CRLF or CR (a CRLF split across two reads is still one line end); a blank
line dispatches the event; `data:` lines of one event are joined with LF; lines
starting with `:` are comments; `event:` names the event type (`error` for some
backends' in-stream failures); `id:` and `retry:` are ignored. Data stays `bytes`
so `orjson.loads` can read it without a decode step.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SSEDecoder", "SSEEvent"]


@dataclass(frozen=True, slots=True)
class SSEEvent:
    data: bytes
    #: The `event:` field; "message" when the event did not name one.
    event: str = "message"


_MESSAGE = "message"


class SSEDecoder:
    """Feed bytes, get complete events. One decoder per stream; not thread-safe."""

    __slots__ = ("_buffer", "_data", "_event", "_skip_lf")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []
        self._event = _MESSAGE
        #: The previous read ended in CR: an LF starting the next read belongs to it.
        self._skip_lf = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Decode as much of the stream as is complete; keep the rest for the next read."""
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" in buffer:
            if buffer.endswith(b"\r"):
                self._skip_lf = True
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()
        events: list[SSEEvent] = []
        for line in lines:
            if line:
                self._field(line)
            elif self._data:
                events.append(self._dispatch())
            else:
                self._event = _MESSAGE
        return events

    def flush(self) -> SSEEvent | None:
        """At end of stream: the last event if it lacked its closing blank line.

        The spec discards such an event; backends that close right after
        `data: [DONE]\\n` exist, so we are lenient.
        """
        if self._buffer:
            self._field(self._buffer)
            self._buffer = b""
        return self._dispatch() if self._data else None

    def _field(self, line: bytes) -> None:
        if line.startswith(b"data:"):
            value = line[5:]
            self._data.append(value[1:] if value[:1] == b" " else value)
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
        self._event = _MESSAGE
        return event
