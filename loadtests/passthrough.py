"""The bench's control: a bare FastAPI + aiohttp pass-through, the least a Python gateway can do.

It forwards the body to one upstream and relays the answer (whole or streamed) with no
routing, metering, validation or accounting, served by uvicorn with the same loop and
HTTP protocol family as `corral serve`. `make bench` runs it beside the gateway so that
the gateway's tail and throughput are judged against what the stack itself costs.

    python -m loadtests.passthrough --port 9000 --upstream http://127.0.0.1:8001/v1/openai
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse


def build_app(upstream: str) -> FastAPI:
    session: dict[str, aiohttp.ClientSession] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        session["s"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
        yield
        await session["s"].close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body = await request.body()
        headers = {"Content-Type": "application/json", "Authorization": request.headers.get("authorization", "")}
        answer = await session["s"].post(f"{upstream}/chat/completions", data=body, headers=headers)
        if answer.headers.get("content-type", "").startswith("text/event-stream"):
            return StreamingResponse(_relay(answer), media_type="text/event-stream")
        data = await answer.read()
        return Response(data, status_code=answer.status, media_type="application/json")

    return app


async def _relay(answer: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    try:
        async for chunk in answer.content.iter_any():
            yield chunk
    finally:
        answer.release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="base URL ending before /chat/completions")
    args = parser.parse_args()
    uvicorn.run(
        build_app(args.upstream),
        host="127.0.0.1",
        port=args.port,
        loop="auto",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
