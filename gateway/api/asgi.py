"""Serve the hot endpoint straight from ASGI.

The framework's middleware stack and per-route dependency machinery cost more than the
rest of a request's handling; the chat endpoint needs none of it (it parses its own
body and maps its own errors). Every other path, and the lifespan, go to the FastAPI
app unchanged, which also keeps the endpoint in the OpenAPI document.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.api.errors import error_response
from gateway.errors import Code, GatewayError, error

log = logging.getLogger("corral.api")
#: A handler answers with any ASGI response (a Starlette Response, or our SSEResponse).
Handler = Callable[[Request], Awaitable[ASGIApp]]


def header(request: Request, name: bytes) -> str | None:
    """One request header by its lowercase name (ASGI servers lowercase them). Starlette's
    case-insensitive view raises and catches a KeyError for every header a request does
    not carry (most requests carry no Idempotency-Key, Cache-Control or traceparent)."""
    headers: list[tuple[bytes, bytes]] = request.scope["headers"]
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def trace_carrier(request: Request) -> Mapping[str, str]:
    """The headers a trace context is read from: none to read when there is no traceparent."""
    return request.headers if header(request, b"traceparent") is not None else {}


class JSONBody:
    """A finished JSON answer as two ASGI messages, headers encoded once (Starlette's
    Response re-derives and re-encodes them, and checks for background tasks)."""

    __slots__ = ("body", "raw_headers", "status")

    def __init__(self, body: bytes, headers: Mapping[str, str], status: int = 200) -> None:
        self.body = body
        self.status = status
        self.raw_headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        self.raw_headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body})


class FastPath:
    def __init__(self, app: ASGIApp, routes: dict[tuple[str, str], Handler]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            handler = self.routes.get((scope["method"], scope["path"]))
            if handler is not None:
                await self._serve(handler, scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _serve(self, handler: Handler, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        response: ASGIApp
        try:
            response = await handler(request)
        except GatewayError as failure:
            response = error_response(failure)
        except Exception as exc:
            log.error("unhandled error on %s %s: %s", scope["method"], scope["path"], type(exc).__name__, exc_info=exc)
            internal = error(Code.INTERNAL_ERROR, "internal error in the gateway; it has been logged")
            response = error_response(internal)
        await response(scope, receive, send)
