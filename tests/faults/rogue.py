"""An upstream that answers every chat request with the same 200 body, whatever it is:
the shapes no well-behaved fake sends (wrong JSON shape, a huge body). It stands in for
an OpenAI-dialect backend (`/v1/chat/completions`) or for Bedrock (`/model/{id}/converse`,
signatures unchecked) at its address, as the fakes do."""

from __future__ import annotations

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
