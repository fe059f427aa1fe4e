"""A deployment whose model is gone is out of rotation for a bounded time, then re-probed
by the next request; the take-out is shared with other replicas through Redis."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from gateway.live.shared import PREFIX, SharedState
from gateway.live.state import MODEL_GONE_S, SHARED_OUT_REASON, LiveState

KEY = "deepinfra/llama-4-scout"
REDIS_URL = "redis://127.0.0.1:6379/14"


def test_a_take_out_is_bounded_and_then_re_probed() -> None:
    now = [1000.0]
    state = LiveState(clock=lambda: now[0])
    heard: list[tuple[str, str, dict[str, float]]] = []
    state.listeners.append(lambda kind, key, data: heard.append((kind, key, data)))
    state.take_out(KEY, "deepinfra said the model is gone")
    assert state.view().out_of_rotation == {KEY: "deepinfra said the model is gone"}
    assert heard == [("out", KEY, {"for_s": MODEL_GONE_S})]
    now[0] += MODEL_GONE_S - 1
    assert KEY in state.view().out_of_rotation
    now[0] += 1
    assert KEY not in state.view().out_of_rotation  # back: the next request re-probes it


async def _until(check: object, seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("not shared in time")
        await asyncio.sleep(0.05)


async def test_a_take_out_is_shared_with_other_replicas_and_with_late_starters() -> None:
    client = aioredis.from_url(REDIS_URL)
    await client.delete(f"{PREFIX}out:{KEY}")
    first, second, late = LiveState(), LiveState(), LiveState()
    a, b = SharedState(first, REDIS_URL), SharedState(second, REDIS_URL)
    await a.start()
    await b.start()
    c = SharedState(late, REDIS_URL)
    try:
        await asyncio.sleep(0.3)  # both subscribed
        first.take_out(KEY, "deepinfra said the model is gone", for_s=30)
        await _until(lambda: KEY in second.out_of_rotation)
        assert second.out_of_rotation[KEY] == SHARED_OUT_REASON
        assert 25 < second.out_until[KEY] - second.clock() <= 30  # bounded there too
        ttl = await client.pttl(f"{PREFIX}out:{KEY}")
        assert 0 < ttl <= 30_000
        await c.start()  # a replica starting later catches up from the key
        await _until(lambda: KEY in late.out_of_rotation)
    finally:
        for shared in (a, b, c):
            await shared.close()
        await client.delete(f"{PREFIX}out:{KEY}")
        await client.aclose()
