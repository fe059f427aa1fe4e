"""Server-sent-event framing for OpenAI-style streams."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

DONE = b"data: [DONE]\n\n"


class LastWrite(bytes):
    """A body's last bytes: `SSEResponse` ends the response in the same write (a stream
    that ends with `[DONE]` needs no mark)."""


def frame(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def usage_chunk(template: dict[str, Any], usage: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's final `stream_options.include_usage` chunk: no choices, totals in `usage`."""
    return {
        "id": template.get("id", ""),
        "object": "chat.completion.chunk",
        "created": template.get("created", 0),
        "model": template.get("model", ""),
        "choices": [],
        "usage": usage,
        **extra,
    }


class SSEResponse:
    """A minimal ASGI streaming response for the hot path.

    Starlette's StreamingResponse runs a task group per response to watch for the client
    going away; this does the same with one plain task, which is much cheaper. When the
    client disconnects, the streaming task is cancelled, so the body generator's
    `finally` runs (that is where usage is metered and the upstream stream closed).
    """

    def __init__(self, body: AsyncIterator[bytes], headers: Mapping[str, str]) -> None:
        self.body = body
        self.raw_headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]
        self.raw_headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streamer = asyncio.current_task()
        assert streamer is not None
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                continue
            gone.set()
            streamer.cancel()

        watcher = asyncio.create_task(watch())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async for data in self.body:
                # The last bytes ([DONE], or marked) end the body in the same write as the last chunk marker.
                last = type(data) is LastWrite or data.endswith(DONE)
                await send({"type": "http.response.body", "body": data, "more_body": not last})
                if last:
                    return
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not gone.is_set():
                raise
            streamer.uncancel()
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            if hasattr(self.body, "aclose"):
                await self.body.aclose()
