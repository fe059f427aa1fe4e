"""An upstream that answers every chat request with the same 200 body, whatever it is:
the shapes no well-behaved fake sends (wrong JSON shape, a huge body). It stands in for
an OpenAI-dialect backend (`/v1/chat/completions`) or for Bedrock (`/model/{id}/converse`,
signatures unchecked) at its address, as the fakes do."""

from __future__ import annotations

import asyncio

from aiohttp import web

from gateway.fakes.server import FakeServer


class RogueUpstream(FakeServer):
    provider = "rogue"

    def __init__(self, body: bytes, *, chunked: bool = False, bedrock: bool = False) -> None:
        super().__init__()
        self.body = body
        #: Send without a Content-Length (the reader cannot refuse it before reading).
        self.chunked = chunked
        self.bedrock = bedrock

    def routes(self) -> list[web.RouteDef]:
        path = "/model/{model}/converse" if self.bedrock else "/v1/chat/completions"
        return [web.post(path, self.answer)]

    @property
    def base_url(self) -> str:
        return self.url if self.bedrock else self.url + "/v1"

    async def answer(self, request: web.Request) -> web.Response:
        await self.read(request)
        response = web.Response(status=200, body=self.body, content_type="application/json")
        if self.chunked:
            response.enable_chunked_encoding()
        return response


#: One piece of a hostile event: a JSON string that never closes.
_PIECE = b"a" * (64 * 1024)


class FloodingStream(RogueUpstream):
    """A 200 SSE answer that sends `first` (whole events) and then one event of `flood`
    bytes that never ends, in 64 KiB writes (or `piece` every `pause_s`: a trickle), until
    the gateway hangs up or `flood` is sent. Nothing is held: the same piece is written again."""

    handler_cancellation = True

    def __init__(self, flood: int, first: bytes = b"", piece: bytes = _PIECE, pause_s: float = 0.0) -> None:
        super().__init__(b"")
        self.piece = piece
        self.pause_s = pause_s
        self.flood = flood
        self.first = first
        #: Bytes written per request before the connection went away.
        self.sent: list[int] = []

    async def answer(self, request: web.Request) -> web.StreamResponse:  # type: ignore[override]
        await self.read(request)
        response = web.StreamResponse(status=200, headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        sent = 0
        try:
            await response.write(self.first + b'data: {"choices": [{"delta": {"content": "')
            while sent < self.flood:
                await response.write(self.piece)
                sent += len(self.piece)
                if self.pause_s:
                    await asyncio.sleep(self.pause_s)
        except (ConnectionError, RuntimeError):
            pass
        finally:
            self.sent.append(sent)
        return response
