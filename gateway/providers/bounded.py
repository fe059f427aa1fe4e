"""Reading a whole upstream answer without letting one misbehaving backend make a worker
buffer without bound."""

from __future__ import annotations

import aiohttp

#: Larger whole answers are refused unread: far above any real completion (logprobs
#: included), and a bound on what one backend can make a worker hold.
MAX_ANSWER_BYTES = 32 * 1024 * 1024


def too_large(declared: int | None = None) -> str:
    """Why an answer was refused, for the MALFORMED_RESPONSE error the caller raises."""
    size = f"answer of {declared} bytes" if declared is not None else "answer"
    return f"{size} is over the {MAX_ANSWER_BYTES // (1024 * 1024)} MiB limit for an answer"


async def read_bounded(response: aiohttp.ClientResponse, limit: int = MAX_ANSWER_BYTES) -> bytes | None:
    """The whole body, or None (and the connection dropped) when it is over `limit`: at once
    when its Content-Length says so, else as soon as that much has arrived."""
    declared = response.content_length
    if declared is not None and declared <= limit:
        return await response.read()
    if declared is not None:
        response.close()
        return None
    parts: list[bytes] = []
    size = 0
    async for part in response.content.iter_any():
        size += len(part)
        if size > limit:
            response.close()
            return None
        parts.append(part)
    return b"".join(parts)
