"""Where cached answers live: Redis when REDIS_URL is set (every replica reads what any
replica kept), else an in-process LRU bounded in bytes. Both expire entries after their
TTL; both refuse an entry larger than `max_entry_bytes`."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as aioredis

#: Bytes counted per memory entry beyond its key and value (the dict slot, the tuple, the
#: bytes objects' headers), so many tiny entries cannot exceed the bound either.
ENTRY_OVERHEAD = 320


class CacheStore(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes, ttl_s: int) -> bool:
        """Keep `value` for `ttl_s` seconds; False when it is not kept (too large)."""
        ...

    async def close(self) -> None: ...


class LruStore:
    """An LRU whose keys, values and per-entry overhead together stay within `max_bytes`:
    putting an entry evicts the least recently used until it fits. Expired entries are
    dropped when read or when they reach the LRU's end."""

    def __init__(self, max_bytes: int, max_entry_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self.max_entry_bytes = min(max_entry_bytes, max_bytes)
        self.clock = clock
        self.bytes = 0
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def _size(key: str, value: bytes) -> int:
        return len(key) + len(value) + ENTRY_OVERHEAD

    async def get(self, key: str) -> bytes | None:
        held = self._entries.get(key)
        if held is None:
            return None
        expires, value = held
        if expires <= self.clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return value

    async def put(self, key: str, value: bytes, ttl_s: int) -> bool:
        size = self._size(key, value)
        if size > self.max_entry_bytes:
            return False
        if key in self._entries:
            self._drop(key)
        while self._entries and self.bytes + size > self.max_bytes:
            self._drop(next(iter(self._entries)))
        self._entries[key] = (self.clock() + ttl_s, value)
        self.bytes += size
        return True

    def _drop(self, key: str) -> None:
        _expires, value = self._entries.pop(key)
        self.bytes -= self._size(key, value)

    async def close(self) -> None:
        self._entries.clear()
        self.bytes = 0


class RedisStore:
    """Entries as plain Redis strings under `prefix` + key, expiring by Redis's own TTL
    (SET ... PX), so every replica sharing the database shares the cache."""

    def __init__(self, url: str, prefix: str, max_entry_bytes: int, timeout_s: float = 0.5) -> None:
        self.prefix = prefix
        self.max_entry_bytes = max_entry_bytes
        self._client = aioredis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)

    async def get(self, key: str) -> bytes | None:
        value = await self._client.get(self.prefix + key)
        return value if isinstance(value, bytes) else None

    async def put(self, key: str, value: bytes, ttl_s: int) -> bool:
        if len(value) > self.max_entry_bytes:
            return False
        await self._client.set(self.prefix + key, value, px=ttl_s * 1000)
        return True

    async def close(self) -> None:
        await self._client.aclose()
