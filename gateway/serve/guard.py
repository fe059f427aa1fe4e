"""Slow clients: a header deadline and a connection cap per worker, in uvicorn's protocol.

uvicorn times out only idle keep-alive connections: a client that opens a connection and
sends its headers a byte at a time (slowloris) holds a file descriptor for as long as it
likes, and 1,100 of them under a 1,024-fd limit made every other request fail. This
protocol (uvicorn's httptools one, extended):

- closes a connection whose request line and headers are not complete `header_timeout_s`
  after the connection opened or its next request began;
- keeps at most `max_connections` connections per worker: past that the oldest connection
  still waiting for its headers is closed to make room (a slow client gives way to a
  working one); when every connection is busy with a real request, the new one is closed.

The body has its own deadline at the edge (`gateway.api.parse.read_body`); a request whose
whole body is already in when its handler starts needs none, and this protocol says so in
the scope's extensions (`BODY_RECEIVED`): `receive()` then returns at once, and the
handler skips arming and cancelling a timer. The values are set once per process by
`configure` (`corral serve` and each worker's app factory).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.serve.coalesce import HeadHoldingTransport

__all__ = ["BODY_RECEIVED", "GuardedHttpToolsProtocol", "configure"]

#: ASGI scope extension present when the server holds the request's whole body.
BODY_RECEIVED = "corral.body_received"

#: Defaults (gateway.config.Settings carries the configured values).
HEADER_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 512

_limits = {"header_timeout_s": HEADER_TIMEOUT_S, "max_connections": float(MAX_CONNECTIONS)}
#: Connections waiting for their headers, oldest first (one event loop per process).
_waiting: OrderedDict[GuardedHttpToolsProtocol, None] = OrderedDict()


def configure(header_timeout_s: float, max_connections: int) -> None:
    _limits["header_timeout_s"] = header_timeout_s
    _limits["max_connections"] = float(max_connections)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    _header_timer: asyncio.TimerHandle | None = None
    #: A request has begun and its headers are not complete yet.
    _in_headers = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()
        if len(self.connections) > _limits["max_connections"]:
            oldest = next(iter(_waiting))
            (oldest if oldest is not self else self)._drop()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # Armed only for a request whose headers did not all come in this read: most come
        # whole in one, and a timer armed and cancelled within one read is work for nothing.
        if self._in_headers:
            self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._disarm()
        super().on_headers_complete()
        cycle: Any = self.cycle
        if cycle is not None:
            cycle.transport = HeadHoldingTransport(self.transport, self.loop)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        cycle: Any = self.cycle
        if cycle is not None and not cycle.more_body:
            cycle.scope.setdefault("extensions", {})[BODY_RECEIVED] = {}

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(_limits["header_timeout_s"], self._drop)
            _waiting[self] = None

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        _waiting.pop(self, None)

    def _drop(self) -> None:
        """Close a connection that is still waiting for its headers."""
        self._disarm()
        transport: Any = getattr(self, "transport", None)
        if transport is not None and not transport.is_closing():
            transport.close()
