"""One write for a response's head and its first body bytes.

uvicorn writes the status line and headers the moment the app sends
`http.response.start`, then each body part as it comes: every response costs at least
two `send` system calls, and on loopback each one also runs the receiving side's TCP
work and wakes the client for a partial answer. The gateway always has its first body
bytes ready when it starts a response (a whole answer, or a stream's first chunk, which
the dispatcher reads before answering so that a failed attempt can still be retried), so
holding the head back until the first body write costs nothing in latency and saves a
system call per request (`make bench`, README "Performance").

`HeadHoldingTransport` stands in for the connection's transport in uvicorn's
request/response cycle only (the protocol keeps the real one for reading and flow
control). The head is never held past the current turn of the event loop: if no body
write follows in the same turn (an app that starts a response and then waits), it goes
out on its own, as before.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["HeadHoldingTransport"]


class HeadHoldingTransport:
    """Holds the first write (the response head) until the next one, or the end of this loop turn."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        #: None until the head is written; the head while held; b"" once it went out.
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:
            self._held = data
            self._loop.call_soon(self._flush)
            return
        if held:
            self._held = b""
            data = held + data
        self._transport.write(data)

    def _flush(self) -> None:
        held = self._held
        if held:
            self._held = b""
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
