"""The in-process store stays within its byte bound however much is put into it, evicts the
least recently used first, expires entries after their TTL and refuses oversized ones."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import secrets
import tracemalloc

import pytest

from gateway.cache import stores
from gateway.cache.stores import ENTRY_OVERHEAD, LruStore


def test_filling_far_past_the_bound_never_exceeds_it() -> None:
    async def fill() -> LruStore:
        store = LruStore(max_bytes=64 * 1024, max_entry_bytes=8 * 1024)
        for i in range(5_000):
            value = secrets.token_bytes(100 + (i * 37) % 4000)
            assert await store.put(f"key-{i}", value, ttl_s=60)
            accounted = sum(len(k) + len(v) + ENTRY_OVERHEAD for k, (_e, v) in store._entries.items())
            assert store.bytes == accounted <= store.max_bytes
        return store

    store = asyncio.run(fill())
    assert 0 < len(store) < 5_000
    assert store.bytes > store.max_bytes // 2


def test_the_least_recently_used_goes_first() -> None:
    async def scenario() -> list[bytes | None]:
        size = 1000
        store = LruStore(max_bytes=3 * (size + 5 + ENTRY_OVERHEAD), max_entry_bytes=10_000)
        for name in ("key-a", "key-b", "key-c"):
            await store.put(name, b"x" * size, ttl_s=60)
        await store.get("key-a")
        await store.put("key-d", b"x" * size, ttl_s=60)
        return [await store.get(k) for k in ("key-a", "key-b", "key-c", "key-d")]

    a, b, c, d = asyncio.run(scenario())
    assert b is None and a is not None and c is not None and d is not None


def test_entries_expire_and_oversized_ones_are_refused() -> None:
    now = [100.0]

    async def scenario() -> tuple[bytes | None, bytes | None, bool, int]:
        store = LruStore(max_bytes=10_000, max_entry_bytes=2_000, clock=lambda: now[0])
        await store.put("k", b"v", ttl_s=5)
        fresh = await store.get("k")
        now[0] += 5.01
        stale = await store.get("k")
        kept = await store.put("big", b"x" * 2_000, ttl_s=5)
        return fresh, stale, kept, store.bytes

    fresh, stale, kept, held = asyncio.run(scenario())
    assert fresh == b"v" and stale is None and not kept and held == 0


@pytest.mark.parametrize("value_bytes", [0, 10, 200, 2000])
def test_the_memory_the_store_really_holds_stays_under_the_bound(value_bytes: int) -> None:
    """Measured with tracemalloc, not the store's own accounting: the per-entry overhead it
    counts covers what Python really spends on an entry, even for tiny ones. Only what the
    store's module and this test allocate is counted: a thread an earlier test left behind
    (a server winding down) allocates in the same process meanwhile, and with the largest
    values the store sits within 2% of the bound."""
    bound = 1 << 20

    async def fill() -> LruStore:
        store = LruStore(max_bytes=bound, max_entry_bytes=bound)
        for i in range(20_000):
            await store.put(hashlib.sha256(str(i).encode()).hexdigest(), b"x" * value_bytes, ttl_s=60)
        return store

    ours = [tracemalloc.Filter(True, stores.__file__), tracemalloc.Filter(True, __file__)]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot().filter_traces(ours)
        store = asyncio.run(fill())
        gc.collect()
        after = tracemalloc.take_snapshot().filter_traces(ours)
    finally:
        tracemalloc.stop()
    held = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert store.bytes <= bound and len(store) < 20_000
    assert held <= bound
