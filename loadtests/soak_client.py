"""The soak's load generator: `concurrency` asyncio loops, each sending one request after
another until the deadline, spread round-robin over the gateway replicas (one aiohttp
session, so connections are kept alive like a real client's pool).

Every answer becomes a `Result`: class, replica, status, the gateway's request id, the
client-side latency (whole answer; for streams also the first content chunk), and
whether the gateway should have written a ledger row for it (it reached a backend).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import orjson

from loadtests.soak_mix import RequestSpec, build, pick_kind

REQUEST_TIMEOUT_S = 60.0


@dataclass(slots=True)
class Result:
    kind: str
    replica: int
    #: HTTP status, or 0 when no answer came (connection error, timeout).
    status: int
    request_id: str | None
    started: float
    total_ms: float
    #: Streams: until the first content chunk; others: the whole answer.
    first_ms: float
    should_succeed: bool
    #: The gateway reached a backend for it, so the ledger must hold its row.
    expects_row: bool
    #: Why it failed: the error body's code, a broken stream, or the client exception.
    error: str = ""
    #: An error code that is a correct answer for this request too.
    tolerated: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.error

    @property
    def correct(self) -> bool:
        """What a correct gateway answers: success, the tolerated error, or for a broken request a 4xx."""
        if not self.should_succeed:
            return 400 <= self.status < 500
        return self.ok or (self.tolerated is not None and self.error == self.tolerated)


def _error_of(body: bytes) -> tuple[str, bool]:
    """An error answer's code, and whether it lists backends tried (`error.attempts`):
    a request that reached a backend has a ledger row even when it failed."""
    try:
        error = orjson.loads(body).get("error") or {}
    except (orjson.JSONDecodeError, AttributeError):
        return "unreadable error body", False
    return str(error.get("code") or error.get("type")), bool(error.get("attempts"))


async def _read_stream(response: aiohttp.ClientResponse, started: float) -> tuple[float, str]:
    """Read SSE frames to `[DONE]`: (ms to the first content chunk, error if any)."""
    first_ms = 0.0
    done = False
    async for raw in response.content:
        line = raw.strip()
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            done = True
            break
        chunk = orjson.loads(data)
        if "error" in chunk:
            return first_ms, f"stream error: {chunk['error'].get('code')}"
        if not first_ms and any((c.get("delta") or {}).get("content") for c in chunk.get("choices") or ()):
            first_ms = (time.perf_counter() - started) * 1000
    return first_ms, "" if done else "stream ended without [DONE]"


async def send(session: aiohttp.ClientSession, url: str, key: str, spec: RequestSpec, replica: int) -> Result:
    started = time.perf_counter()
    wall = time.time()
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    try:
        async with session.post(url, data=orjson.dumps(spec.body), headers=headers) as response:
            request_id = response.headers.get("x-corral-request-id")
            if spec.stream and response.status == 200:
                first_ms, error = await _read_stream(response, started)
                body = b""
            else:
                body = await response.read()
                first_ms, error = 0.0, ""
            total_ms = (time.perf_counter() - started) * 1000
            status = response.status
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:  # ValueError: an unreadable SSE frame
        total_ms = (time.perf_counter() - started) * 1000
        error = type(exc).__name__
        return Result(spec.kind, replica, 0, None, wall, total_ms, total_ms, spec.should_succeed, False, error)
    expects_row = status == 200
    if status != 200:
        error, expects_row = _error_of(body)
    return Result(
        spec.kind, replica, status, request_id, wall, total_ms, first_ms or total_ms, spec.should_succeed, expects_row,
        error, spec.tolerated,
    )  # fmt: skip


async def generate(
    urls: list[str],
    key: str,
    *,
    concurrency: int,
    seconds: float,
    seed: int = 8,
    on_result: Callable[[Result], None] | None = None,
) -> list[Result]:
    """Run the mix against `urls` (chat endpoints) for `seconds`; every answer, in order."""
    results: list[Result] = []
    rng = random.Random(seed)
    replicas = itertools.cycle(range(len(urls)))
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency * 2, limit_per_host=concurrency)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)

    async def loop(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < deadline:
            spec = build(pick_kind(rng), rng)
            replica = next(replicas)
            result = await send(session, urls[replica], key, spec, replica)
            results.append(result)
            if on_result is not None:
                on_result(result)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(loop(session) for _ in range(concurrency)))
    return results
