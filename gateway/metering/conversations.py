"""Conversations behind the Responses API's `previous_response_id`, kept for a bounded time.

Each stored response holds its whole conversation (the messages before it and its own
answer), under the scope of the API key that made it: a follow-up from another key finds
nothing (404, as for an id that never existed). With a SQL ledger the conversations live in
the ledger database (table `responses`), so a follow-up may reach any replica sharing it;
the store's calls then run in a worker thread, never on the event loop. Without one they
are kept in this process's memory (at most `MAX_IN_MEMORY`, oldest dropped first).
Expired rows are never served, and are deleted at start and, at most every
`PURGE_INTERVAL_S`, by a later write.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from gateway.errors import Code, error

__all__ = ["MAX_IN_MEMORY", "ConversationStore", "Conversations", "MemoryConversations"]

log = logging.getLogger("corral.responses")

Messages = list[dict[str, Any]]
R = TypeVar("R")
#: Most conversations one process keeps in memory (without a SQL ledger).
MAX_IN_MEMORY = 10_000
#: Shortest time between two deletions of expired conversations by one process.
PURGE_INTERVAL_S = 300.0


class ConversationStore(Protocol):
    """Blocking calls (the SQL store's run in a worker thread)."""

    def put(self, scope: str, response_id: str, messages: Messages, now: datetime, expires: datetime) -> None: ...

    def get(self, scope: str, response_id: str, now: datetime) -> Messages | None: ...

    def purge(self, now: datetime) -> int: ...


class MemoryConversations:
    def __init__(self, max_items: int = MAX_IN_MEMORY) -> None:
        self.max_items = max_items
        self._items: OrderedDict[str, tuple[str, datetime, Messages]] = OrderedDict()

    def put(self, scope: str, response_id: str, messages: Messages, now: datetime, expires: datetime) -> None:
        self._items[response_id] = (scope, expires, messages)
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)

    def get(self, scope: str, response_id: str, now: datetime) -> Messages | None:
        found = self._items.get(response_id)
        if found is None or found[0] != scope or found[1] <= now:
            return None
        return found[2]

    def purge(self, now: datetime) -> int:
        expired = [k for k, (_scope, expires, _m) in self._items.items() if expires <= now]
        for k in expired:
            del self._items[k]
        return len(expired)

    def __len__(self) -> int:
        return len(self._items)


class Conversations:
    """Usage: `await conversations.put(scope, id, messages)`, `await conversations.get(scope, id)`."""

    def __init__(
        self,
        store: ConversationStore,
        *,
        retention_s: float,
        threaded: bool,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        purge_interval_s: float = PURGE_INTERVAL_S,
    ) -> None:
        self.store = store
        self.retention_s = retention_s
        self.threaded = threaded
        self.clock = clock
        self.purge_interval_s = purge_interval_s
        self._next_purge = time.monotonic() + purge_interval_s

    async def _run(self, call: Callable[[], R]) -> R:
        if self.threaded:
            return await asyncio.to_thread(call)
        return call()

    async def get(self, scope: str, response_id: str) -> Messages | None:
        """503 `ledger_unavailable` (retryable) while the database cannot be read."""
        try:
            return await self._run(partial(self.store.get, scope, response_id, self.clock()))
        except SQLAlchemyError as exc:
            raise error(
                Code.LEDGER_UNAVAILABLE,
                f"stored responses are unreadable ({type(exc).__name__}); retry later",
                headers={"retry-after": "1"},
            ) from exc

    async def put(self, scope: str, response_id: str, messages: Messages) -> bool:
        """Keep a conversation; False (logged) when the store failed: the answer still goes
        out, and a follow-up naming it gets a 404."""
        now = self.clock()
        purge = time.monotonic() >= self._next_purge
        if purge:
            self._next_purge = time.monotonic() + self.purge_interval_s

        def write() -> None:
            self.store.put(scope, response_id, messages, now, now + timedelta(seconds=self.retention_s))
            if purge:
                self.store.purge(now)

        try:
            await self._run(write)
        except SQLAlchemyError as exc:
            log.warning("responses: %s not stored (%s)", response_id, type(exc).__name__)
            return False
        return True

    async def purge(self) -> int:
        return await self._run(partial(self.store.purge, self.clock()))
