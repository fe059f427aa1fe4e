"""Conversations behind `previous_response_id`, kept for a bounded time and count.

In memory, per gateway process: a follow-up that reaches another replica (or comes after
a restart, or after `ttl_s`) gets a 404 naming the id, and the client sends the whole
conversation instead, as it would to OpenAI with `store: false`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

__all__ = ["ResponseStore"]


class ResponseStore:
    def __init__(self, ttl_s: float = 3600.0, max_items: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self.ttl_s = ttl_s
        self.max_items = max_items
        self.clock = clock
        self._items: OrderedDict[str, tuple[float, list[dict[str, Any]]]] = OrderedDict()

    def put(self, response_id: str, messages: list[dict[str, Any]]) -> None:
        now = self.clock()
        self._items[response_id] = (now + self.ttl_s, messages)
        while self._items:
            oldest, (expires, _) = next(iter(self._items.items()))
            if expires > now and len(self._items) <= self.max_items:
                break
            del self._items[oldest]

    def get(self, response_id: str) -> list[dict[str, Any]] | None:
        found = self._items.get(response_id)
        if found is None or found[0] <= self.clock():
            return None
        return found[1]

    def __len__(self) -> int:
        return len(self._items)
