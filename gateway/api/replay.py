"""A kept answer sent again for a repeated Idempotency-Key: the same status, headers
(request id and cost included) and body; a completed stream as a stream."""

from __future__ import annotations

from collections.abc import AsyncIterator

from gateway.api.asgi import JSONBody
from gateway.api.sse_encode import SSEResponse
from gateway.metering.idempotency import REPLAYED_HEADER, Answer


def replayed(answer: Answer) -> JSONBody | SSEResponse:
    headers = {**answer.headers, REPLAYED_HEADER: "true"}
    if answer.stream:
        return SSEResponse(_once(answer.body), headers)
    return JSONBody(answer.body, headers, answer.status)


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body
